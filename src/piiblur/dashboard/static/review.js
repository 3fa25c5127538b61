// The review editor on a media page: the detections drawn over the original; click a box to
// remove it, drag to add one; for video, a scrubber and a timeline of tracks. Approving sends
// the changes (the API's PATCH operations) and asks for a render.
"use strict";

const editor = document.getElementById("editor");
if (editor) {
  const mediaId = editor.dataset.media;
  const csrf = editor.dataset.csrf;
  const isVideo = editor.dataset.kind === "video";
  const picture = document.getElementById("editor-picture");
  const layer = document.getElementById("editor-boxes");
  const status = document.getElementById("editor-status");
  const category = document.getElementById("new-category");
  const SVG = "http://www.w3.org/2000/svg";
  const NEAR_KEYFRAME = 10; // a keyframe's box is drawn this many frames around it (the longest stride)

  let items = [];
  let frames = 1;
  const removed = new Set(); // ids
  const removedTracks = new Set();
  const added = []; // {key, category, box, frame, frame_end}
  const history = []; // for undo: ["remove", id] | ["track", track] | ["add", key]
  let selected = null;
  let addedCount = 0;

  const size = () => isVideo ? [picture.videoWidth, picture.videoHeight] : [picture.naturalWidth, picture.naturalHeight];
  const fps = () => (isVideo && picture.duration ? frames / picture.duration : 1);
  // The frame shown: set by the scrubber, which seeks the player (the file is served with byte
  // ranges); playing moves it on.
  let frameShown = 0;
  const currentFrame = () => (isVideo ? frameShown : 0);

  const visible = () => {
    const frame = currentFrame();
    const shown = [];
    const nearest = new Map(); // track -> detector item nearest this frame
    for (const item of items) {
      if (!isVideo) { shown.push(item); continue; }
      if (item.frame_end !== undefined) { if (item.frame <= frame && frame <= item.frame_end) shown.push(item); continue; }
      const distance = Math.abs(item.frame - frame);
      const best = nearest.get(item.track);
      if (distance <= NEAR_KEYFRAME && (!best || distance < Math.abs(best.frame - frame))) nearest.set(item.track, item);
    }
    shown.push(...nearest.values());
    for (const box of added) if (!isVideo || (box.frame <= frame && frame <= box.frame_end)) shown.push(box);
    return shown;
  };

  const isRemoved = (item) => item.key === undefined && (removed.has(item.id) || removedTracks.has(item.track));

  const draw = () => {
    const [width, height] = size();
    if (!width) return;
    layer.setAttribute("viewBox", `0 0 ${width} ${height}`);
    layer.setAttribute("preserveAspectRatio", "none");
    layer.replaceChildren();
    for (const item of visible()) {
      const rect = document.createElementNS(SVG, "rect");
      const [x, y, w, h] = item.box;
      Object.entries({ x, y, width: w, height: h }).forEach(([k, v]) => rect.setAttribute(k, v));
      const id = item.key ?? item.id;
      rect.dataset.id = id;
      rect.dataset.category = item.category;
      rect.classList.toggle("reviewer", item.key !== undefined || item.source === "reviewer");
      rect.classList.toggle("removed", isRemoved(item));
      rect.classList.toggle("selected", selected === id);
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${item.category.replace("_", " ")}${item.score !== undefined ? ` ${item.score}` : ""}${isRemoved(item) ? " (removed)" : ""}`;
      rect.appendChild(title);
      rect.addEventListener("pointerdown", (event) => { event.stopPropagation(); toggle(id); });
      layer.appendChild(rect);
    }
    if (isVideo) {
      document.getElementById("frame-label").textContent = `frame ${currentFrame()} of ${frames}`;
      document.getElementById("scrub").value = currentFrame();
    }
    const changes = removed.size + removedTracks.size + added.length;
    status.textContent = changes ? `${changes} change${changes > 1 ? "s" : ""} not yet rendered` : "";
  };

  const toggle = (id) => {
    selected = id;
    const addedAt = added.findIndex((box) => box.key === id);
    if (addedAt >= 0) { added.splice(addedAt, 1); history.push(["unadd", id]); }
    else if (removed.has(id)) { removed.delete(id); history.push(["unremove", id]); }
    else { removed.add(id); history.push(["remove", id]); }
    draw();
  };

  const undo = () => {
    const last = history.pop();
    if (!last) return;
    const [kind, value] = last;
    if (kind === "remove") removed.delete(value);
    if (kind === "unremove") removed.add(value);
    if (kind === "track") removedTracks.has(value) ? removedTracks.delete(value) : removedTracks.add(value);
    if (kind === "add") { const at = added.findIndex((b) => b.key === value); if (at >= 0) added.splice(at, 1); }
    drawTracks();
    draw();
  };

  // Dragging on the picture adds a box (in the picture's own pixels).
  let start = null;
  let drawing = null;
  const point = (event) => {
    const bounds = layer.getBoundingClientRect();
    const [width, height] = size();
    return [(event.clientX - bounds.left) * width / bounds.width, (event.clientY - bounds.top) * height / bounds.height];
  };
  layer.addEventListener("pointerdown", (event) => {
    start = point(event);
    drawing = document.createElementNS(SVG, "rect");
    drawing.classList.add("drawing");
    layer.appendChild(drawing);
    layer.setPointerCapture(event.pointerId);
  });
  layer.addEventListener("pointermove", (event) => {
    if (!start) return;
    const [x, y] = point(event);
    const box = [Math.min(x, start[0]), Math.min(y, start[1]), Math.abs(x - start[0]), Math.abs(y - start[1])];
    ["x", "y", "width", "height"].forEach((k, i) => drawing.setAttribute(k, box[i]));
  });
  layer.addEventListener("pointerup", (event) => {
    if (!start) return;
    const [x, y] = point(event);
    const box = [Math.min(x, start[0]), Math.min(y, start[1]), Math.abs(x - start[0]), Math.abs(y - start[1])].map(Math.round);
    start = null;
    drawing.remove();
    if (box[2] < 4 || box[3] < 4) { selected = null; draw(); return; }
    const key = `new-${++addedCount}`;
    const entry = { key, category: category.value, box };
    if (isVideo) {
      const span = Math.max(1, Number(document.getElementById("span-frames").value) || 1);
      entry.frame = currentFrame();
      entry.frame_end = Math.min(frames - 1, entry.frame + span - 1);
    }
    added.push(entry);
    history.push(["add", key]);
    selected = key;
    draw();
  });

  // Video: the scrubber and the tracks.
  const drawTracks = () => {
    if (!isVideo) return;
    const list = document.getElementById("tracks");
    const spans = new Map();
    for (const item of items) {
      if (item.track === undefined) continue;
      const [first, last, cat] = spans.get(item.track) ?? [Infinity, -Infinity, item.category];
      spans.set(item.track, [Math.min(first, item.frame), Math.max(last, item.frame_end ?? item.frame), cat]);
    }
    list.replaceChildren();
    for (const [track, [first, last, cat]] of [...spans].sort((a, b) => a[1][0] - b[1][0])) {
      const row = document.createElement("button");
      row.type = "button";
      row.className = "track";
      row.dataset.track = track;
      row.classList.toggle("removed", removedTracks.has(track));
      row.setAttribute("aria-pressed", removedTracks.has(track));
      const label = document.createElement("span");
      label.textContent = `${cat.replace("_", " ")} #${track} (${first}–${last})`;
      const bar = document.createElement("span");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.style.left = `${100 * first / frames}%`;
      fill.style.width = `${Math.max(0.5, 100 * (last - first + 1) / frames)}%`;
      bar.appendChild(fill);
      row.append(label, bar);
      row.addEventListener("click", () => {
        removedTracks.has(track) ? removedTracks.delete(track) : removedTracks.add(track);
        history.push(["track", track]);
        drawTracks();
        draw();
      });
      list.appendChild(row);
    }
  };
  const seek = (frame) => {
    frameShown = Math.max(0, Math.min(frames - 1, frame));
    if (picture.duration) picture.currentTime = (frameShown + 0.5) / fps();
    draw();
  };
  if (isVideo) {
    const scrub = document.getElementById("scrub");
    scrub.addEventListener("input", () => seek(Number(scrub.value)));
    picture.addEventListener("timeupdate", () => {
      if (!picture.paused) { frameShown = Math.min(frames - 1, Math.floor(picture.currentTime * fps())); draw(); }
    });
    picture.addEventListener("loadedmetadata", draw);
  } else {
    picture.addEventListener("load", draw);
  }

  const approve = async () => {
    const operations = [
      ...[...removed].filter((id) => !added.some((b) => b.key === id)).map((id) => ({ op: "remove", id })),
      ...[...removedTracks].map((track) => ({ op: "remove_track", track })),
      ...added.map(({ category: c, box, frame, frame_end }) => ({ op: "add", detection: { category: c, box, frame, frame_end } })),
    ];
    status.textContent = "Saving…";
    const headers = { "X-CSRF-Token": csrf, "Content-Type": "application/json" };
    if (operations.length) {
      const saved = await fetch(`/dashboard/media/${mediaId}/detections`, { method: "POST", headers, body: JSON.stringify({ operations }) });
      if (!saved.ok) { status.textContent = `Not saved: ${(await saved.json().catch(() => ({}))).error || saved.status}`; return; }
    }
    const rendered = await fetch(`/dashboard/media/${mediaId}/render`, { method: "POST", headers });
    if (!rendered.ok) { status.textContent = `Not rendered: ${(await rendered.json().catch(() => ({}))).error || rendered.status}`; return; }
    status.textContent = "Rendering…";
    const wait = async () => {
      const body = await (await fetch(`/dashboard/media/${mediaId}/status`)).json();
      if (["queued", "processing"].includes(body.status)) { setTimeout(wait, 700); return; }
      location.reload();
    };
    wait();
  };

  document.getElementById("approve").addEventListener("click", approve);
  document.getElementById("undo").addEventListener("click", undo);
  document.addEventListener("keydown", (event) => {
    if (["INPUT", "SELECT", "TEXTAREA"].includes(event.target.tagName)) return;
    if ((event.key === "Delete" || event.key === "Backspace") && selected !== null) {
      const item = items.find((i) => i.id === selected);
      if (added.some((b) => b.key === selected) || (item && !removed.has(item.id))) toggle(selected);
      event.preventDefault();
    } else if (event.key === "u" || event.key === "U" || (event.key === "z" && (event.ctrlKey || event.metaKey))) { undo(); }
    else if (event.key === "a" || event.key === "A") { approve(); }
    else if (event.key === "Escape") { selected = null; draw(); }
    else if (isVideo && event.key === "ArrowRight") { seek(currentFrame() + 1); }
    else if (isVideo && event.key === "ArrowLeft") { seek(currentFrame() - 1); }
  });

  fetch(`/dashboard/media/${mediaId}/detections`).then((r) => r.json()).then((body) => {
    items = body.detections;
    frames = body.frames || 1;
    if (isVideo) document.getElementById("scrub").max = frames - 1;
    drawTracks();
    if (isVideo ? picture.readyState >= 1 : picture.complete) draw();
  });
}
