// The map's drawing, shared by the page and by `beet clapmap`'s file:
// plotly traces of the points (hover text escaped: plotly reads a subset
// of HTML in it), coloured by a field when one is chosen.
"use strict";

function escapeHtml(text) {
  // plotly reads a subset of HTML in hover text: tags stay text.
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function mapTraces(data) {
  const hover = data.labels.map(escapeHtml);
  const colour = data.colour;
  const base = { type: "scattergl", mode: "markers", hoverinfo: "text" };
  if (!colour || colour.numeric) {
    const marker = { size: 5, opacity: 0.8 };
    if (colour) {
      marker.color = colour.values.map((v) => (v === null ? NaN : v));
      marker.colorscale = "Viridis";
      marker.showscale = true;
      marker.colorbar = { title: { text: escapeHtml(colour.field) } };
    }
    return [{ ...base, name: "tracks", x: data.x, y: data.y, hovertext: hover, customdata: data.ids, marker }];
  }
  const groups = new Map();
  colour.values.forEach((value, i) => {
    const name = value === null ? "(none)" : value;
    if (!groups.has(name)) groups.set(name, []);
    groups.get(name).push(i);
  });
  return Array.from(groups, ([name, rows]) => ({
    ...base,
    name: escapeHtml(name),
    x: rows.map((i) => data.x[i]),
    y: rows.map((i) => data.y[i]),
    hovertext: rows.map((i) => hover[i]),
    customdata: rows.map((i) => data.ids[i]),
    marker: { size: 5, opacity: 0.8 },
  }));
}

function mapLayout(data) {
  return {
    dragmode: "lasso", hovermode: "closest", margin: { l: 10, r: 10, t: 10, b: 10 },
    xaxis: { visible: false }, yaxis: { visible: false },
    showlegend: Boolean(data.colour && !data.colour.numeric),
  };
}
