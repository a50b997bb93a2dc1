// Small SVG charts: linear scales, axes with ticks, lines and bands. No library.

const NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

export function scale([d0, d1], [r0, r1]) {
  const span = d1 - d0 || 1;
  return (v) => r0 + ((v - d0) / span) * (r1 - r0);
}

/** About five round numbers across [lo, hi]. */
export function ticks(lo, hi, count = 5) {
  const raw = (hi - lo) / count || 1;
  const step = 10 ** Math.floor(Math.log10(raw));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => raw <= s) || raw;
  const out = [];
  for (let v = Math.ceil(lo / nice) * nice; v <= hi + 1e-9; v += nice) out.push(Number(v.toPrecision(12)));
  return out;
}

export function format(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a < 0.01 || a >= 1e5)) return v.toExponential(1);
  return String(Number(v.toPrecision(3)));
}

/** A chart frame: returns the <svg>, x and y scales, and the plot area. */
export function frame({ width = 720, height = 320, x, y, xlabel = "", ylabel = "", margin = { l: 56, r: 12, t: 12, b: 40 } }) {
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
  const area = { l: margin.l, r: width - margin.r, t: margin.t, b: height - margin.b };
  const sx = scale(x, [area.l, area.r]);
  const sy = scale(y, [area.b, area.t]);
  const axes = svg("g");
  axes.append(svg("line", { class: "axis", x1: area.l, x2: area.r, y1: area.b, y2: area.b }));
  axes.append(svg("line", { class: "axis", x1: area.l, x2: area.l, y1: area.t, y2: area.b }));
  for (const t of ticks(...x)) {
    axes.append(svg("line", { class: "axis", x1: sx(t), x2: sx(t), y1: area.b, y2: area.b + 4 }));
    axes.append(svg("text", { x: sx(t), y: area.b + 16, "text-anchor": "middle" }, format(t)));
  }
  for (const t of ticks(...y)) {
    axes.append(svg("line", { class: "axis", x1: area.l - 4, x2: area.l, y1: sy(t), y2: sy(t) }));
    axes.append(svg("text", { x: area.l - 7, y: sy(t) + 4, "text-anchor": "end" }, format(t)));
  }
  axes.append(svg("text", { x: (area.l + area.r) / 2, y: height - 6, "text-anchor": "middle" }, xlabel));
  axes.append(svg("text", { x: 12, y: (area.t + area.b) / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${(area.t + area.b) / 2})` }, ylabel));
  root.append(axes);
  return { root, sx, sy, area };
}

export function line(xs, ys, sx, sy, cls) {
  const d = xs.map((x, i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(ys[i]).toFixed(1)}`).join("");
  return svg("path", { d, class: cls });
}

export function band(xs, lo, hi, sx, sy, cls) {
  const top = xs.map((x, i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(hi[i]).toFixed(1)}`).join("");
  const bottom = xs.map((x, i) => `L${sx(x).toFixed(1)},${sy(lo[i]).toFixed(1)}`).reverse().join("");
  return svg("path", { d: `${top}${bottom}Z`, class: cls });
}

export function legend(root, items, x, y) {
  items.forEach(([cls, label], i) => {
    root.append(svg("rect", { x, y: y + i * 16, width: 12, height: 10, class: cls }));
    root.append(svg("text", { x: x + 18, y: y + i * 16 + 9 }, label));
  });
}
