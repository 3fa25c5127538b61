from piiblur.cli import main

main()
