// The page's behaviour: the map (plotly.js from the plotly wheel, loaded
// when the map is first opened), lists from map selections, and saving
// playlists. Tag text only ever reaches the page as textContent.
"use strict";

const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
const mapPanel = document.getElementById("map-panel");
const mapButton = document.getElementById("show-map");
const mapDiv = document.getElementById("map");
const mapStatus = document.getElementById("map-status");
const colourInput = document.getElementById("colour");
const resultsTable = document.getElementById("results");
const saveForm = document.getElementById("save");
const saveStatus = document.getElementById("save-status");
let plotlyLoaded = null;
let mapPlayer = null;

function loadPlotly() {
  if (!plotlyLoaded) {
    plotlyLoaded = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/assets/plotly.min.js";
      script.onload = resolve;
      script.onerror = () => reject(new Error("cannot load plotly.js"));
      document.head.appendChild(script);
    });
  }
  return plotlyLoaded;
}

async function fetchJson(url, options) {
  const response = await fetch(url, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function shownIds() {
  return Array.from(resultsTable.querySelectorAll("tbody tr"), (row) => Number(row.dataset.id));
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function showTracks(tracks, heading) {
  const body = resultsTable.querySelector("tbody");
  body.replaceChildren();
  const query = encodeURIComponent(document.getElementById("query").value);
  for (const track of tracks) {
    const row = document.createElement("tr");
    row.dataset.id = track.id;
    const player = document.createElement("audio");
    player.controls = true;
    player.preload = "none";
    player.src = track.audio;
    cell(row, "").appendChild(player);
    cell(row, track.title, "title");
    cell(row, track.artist);
    cell(row, track.album);
    cell(row, track.year);
    cell(row, track.bpm);
    cell(row, track.key);
    cell(row, track.score === null ? "" : track.score.toFixed(3));
    const actions = cell(row, "", "actions");
    for (const [label, param] of [["more like this", "like"], ["radio from here", "radio"]]) {
      const link = document.createElement("a");
      link.href = `/?${param}=${track.id}&query=${query}`;
      link.textContent = label;
      actions.appendChild(link);
      actions.appendChild(document.createTextNode(" "));
    }
    body.appendChild(row);
  }
  document.getElementById("heading").textContent = heading;
  const translated = document.getElementById("translated");
  if (translated) translated.hidden = true; // it told of the search's prompt
  resultsTable.hidden = tracks.length === 0;
  const nothing = document.getElementById("nothing");
  if (nothing) nothing.hidden = true;
  const ids = tracks.map((t) => t.id).join(",");
  document.getElementById("ids").value = ids;
  document.getElementById("download").href = `/playlist.m3u8?ids=${ids}`;
  saveForm.hidden = tracks.length === 0;
  saveStatus.textContent = "";
}

function play(id) {
  const row = resultsTable.querySelector(`tbody tr[data-id="${id}"] audio`);
  if (row) {
    row.play();
    return;
  }
  if (!mapPlayer) {
    mapPlayer = document.createElement("audio");
    mapPlayer.id = "map-player";
    mapPlayer.controls = true;
    mapPanel.querySelector(".map-tools").appendChild(mapPlayer);
  }
  mapPlayer.src = `/audio/${id}`;
  mapPlayer.play();
}

function highlight(data) {
  const wanted = new Set(shownIds());
  const rows = [];
  data.ids.forEach((id, i) => wanted.has(id) && rows.push(i));
  return {
    type: "scattergl", mode: "markers", name: "results", hoverinfo: "text",
    x: rows.map((i) => data.x[i]), y: rows.map((i) => data.y[i]),
    hovertext: rows.map((i) => escapeHtml(data.labels[i])),
    customdata: rows.map((i) => data.ids[i]),
    marker: { size: 11, color: "rgba(0,0,0,0)", line: { color: "#e4572e", width: 2 } },
  };
}

async function drawMap() {
  mapStatus.textContent = "loading the map…";
  const started = performance.now();
  try {
    const colour = colourInput.value.trim();
    const [, data] = await Promise.all([
      loadPlotly(),
      fetchJson(`/api/map${colour ? `?colour=${encodeURIComponent(colour)}` : ""}`),
    ]);
    const layout = mapLayout(data);
    await window.Plotly.react(mapDiv, [...mapTraces(data), highlight(data)], layout, { responsive: true, displaylogo: false });
    mapDiv.dataset.points = String(data.ids.length);
    mapDiv.dataset.renderMs = String(Math.round(performance.now() - started));
    mapStatus.textContent = `${data.ids.length} tracks`;
    if (!mapDiv.dataset.bound) {
      mapDiv.dataset.bound = "yes";
      mapDiv.on("plotly_click", (event) => event.points.length && play(event.points[0].customdata));
      mapDiv.on("plotly_selected", async (event) => {
        if (!event || !event.points.length) return;
        const ids = [...new Set(event.points.map((p) => p.customdata))];
        try {
          const body = await fetchJson(`/api/tracks?ids=${ids.join(",")}`);
          showTracks(body.results, `${body.results.length} tracks selected on the map`);
        } catch (error) {
          mapStatus.textContent = error.message;
        }
      });
    }
  } catch (error) {
    mapStatus.textContent = error.message;
  }
}

mapButton.addEventListener("click", () => {
  mapPanel.hidden = !mapPanel.hidden;
  mapButton.setAttribute("aria-expanded", String(!mapPanel.hidden));
  if (!mapPanel.hidden && !mapDiv.dataset.points) drawMap();
});
colourInput.addEventListener("change", drawMap);

saveForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  saveStatus.textContent = "saving…";
  try {
    const body = await fetchJson(saveForm.action, {
      method: "POST",
      headers: { "X-CSRF-Token": csrfToken },
      body: new FormData(saveForm),
    });
    saveStatus.textContent = `saved ${body.tracks} tracks to ${body.saved}`;
  } catch (error) {
    saveStatus.textContent = error.message;
  }
});

// plotly.js (4.6 MB) is read while the page is idle, so the map opens
// without waiting for it.
(window.requestIdleCallback || ((run) => setTimeout(run, 500)))(() => loadPlotly().catch(() => {}));

// Test and benchmark hooks: open the map and select tracks by id.
window.clapweb = {
  openMap: () => { if (mapPanel.hidden) mapButton.click(); else drawMap(); },
  selectIds: async (ids) => {
    const body = await fetchJson(`/api/tracks?ids=${ids.join(",")}`);
    showTracks(body.results, `${body.results.length} tracks selected on the map`);
  },
};
