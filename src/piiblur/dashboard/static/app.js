// Copy buttons, and the drag-and-drop upload with live status. No build step.
document.querySelectorAll("[data-copy]").forEach((button) => {
  button.addEventListener("click", async () => {
    const text = document.getElementById(button.dataset.copy).textContent;
    try { await navigator.clipboard.writeText(text); button.textContent = "Copied"; }
    catch { button.textContent = "Select and copy"; }
  });
});

const form = document.getElementById("upload");
if (form) {
  const drop = document.getElementById("drop");
  const input = document.getElementById("file");
  const status = document.getElementById("upload-status");
  const send = async (file) => {
    const data = new FormData(form);
    data.set("file", file);
    status.textContent = `Uploading ${file.name}…`;
    const response = await fetch("/dashboard/media/upload", {
      method: "POST", body: data, headers: { "X-CSRF-Token": form.dataset.csrf },
    });
    const body = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok) { status.textContent = `Refused: ${body.error || body.detail || response.status}`; return; }
    status.textContent = `${file.name}: ${body.status}`;
    poll(body.media_id, file.name);
  };
  const poll = async (id, name) => {
    const response = await fetch(`/dashboard/media/${id}/status`);
    const body = await response.json();
    status.innerHTML = "";
    const link = document.createElement("a");
    link.href = `/dashboard/media/${id}`;
    link.textContent = `${name}: ${body.status}${body.status === "processing" ? ` ${body.progress} %` : ""}`;
    status.appendChild(link);
    if (["queued", "processing"].includes(body.status)) setTimeout(() => poll(id, name), 1000);
    else location.reload();
  };
  input.addEventListener("change", () => input.files[0] && send(input.files[0]));
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") input.click(); });
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
  drop.addEventListener("drop", (e) => e.dataTransfer.files[0] && send(e.dataTransfer.files[0]));
}

const detail = document.getElementById("detail-status");
if (detail && ["queued", "processing"].includes(detail.textContent.trim())) {
  setTimeout(() => location.reload(), 1500);
}
