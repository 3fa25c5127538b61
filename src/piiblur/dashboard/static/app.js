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
  const list = document.querySelector("#media-list tbody");
  const FINAL = ["completed", "failed", "quota_exceeded", "awaiting_review"];
  const describe = (body) => `${body.status}${body.status === "processing" ? ` ${body.progress} %` : ""}`;

  // The new item's row, at the top of the list (the "Nothing yet" row goes), updated in place:
  // no reload, so the status line and the chosen categories stay as they are.
  const addRow = (id, name) => {
    list.querySelector("tr.empty")?.remove();
    const row = document.createElement("tr");
    row.dataset.media = id;
    const cells = [document.createElement("td"), document.createElement("td"), document.createElement("td"), document.createElement("td")];
    const link = document.createElement("a");
    link.href = `/dashboard/media/${id}`;
    link.textContent = name;
    cells[0].appendChild(link);
    cells[1].textContent = /\.(mp4|mov|webm)$/i.test(name) ? "video" : "image";
    cells[2].className = "status";
    cells[2].textContent = "queued";
    cells[3].textContent = new Date().toISOString().slice(0, 16).replace("T", " ");
    cells.forEach((cell) => row.appendChild(cell));
    list.prepend(row);
    const pager = document.getElementById("pager-summary");
    if (pager) {
      const total = Number(pager.dataset.total) + 1;
      pager.dataset.total = total;
      pager.textContent = `Page ${pager.dataset.page} of ${pager.dataset.last} (${total} item${total === 1 ? "" : "s"})`;
    }
    return row;
  };
  const say = (line) => {
    const item = document.createElement("li");
    item.textContent = line;
    status.appendChild(item);
    return item;
  };
  const send = async (file) => {
    // Refused here, before a byte is sent: the server would refuse it too, after the upload.
    const limit = Number(form.dataset.maxBytes);
    if (file.size > limit) {
      const shown = limit >= 1024 ** 2 ? `${Math.floor(limit / 1024 ** 2)} MB` : `${limit} bytes`;
      say(`${file.name}: refused: larger than the ${shown} limit`);
      return;
    }
    const data = new FormData(form);
    data.set("file", file);
    const line = say(`Uploading ${file.name}…`);
    const response = await fetch("/dashboard/media/upload", {
      method: "POST", body: data, headers: { "X-CSRF-Token": form.dataset.csrf },
    });
    const body = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok) { line.textContent = `${file.name}: refused: ${body.error || body.detail || response.status}`; return; }
    poll(body.media_id, file.name, line, addRow(body.media_id, file.name));
  };
  const poll = async (id, name, line, row) => {
    const response = await fetch(`/dashboard/media/${id}/status`);
    const body = await response.json();
    line.textContent = "";
    const link = document.createElement("a");
    link.href = `/dashboard/media/${id}`;
    link.textContent = `${name}: ${describe(body)}`;
    line.appendChild(link);
    row.querySelector(".status").textContent = body.status;
    if (!FINAL.includes(body.status)) setTimeout(() => poll(id, name, line, row), 1000);
  };
  const sendAll = (files) => { for (const file of files) send(file); };
  input.addEventListener("change", () => { sendAll(input.files); input.value = ""; });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") input.click(); });
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
  drop.addEventListener("drop", (e) => sendAll(e.dataTransfer.files));
}

const detail = document.getElementById("detail-status");
if (detail && ["queued", "processing"].includes(detail.textContent.trim())) {
  setTimeout(() => location.reload(), 1500);
}
