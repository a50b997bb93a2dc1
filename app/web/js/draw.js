// A canvas to draw on with a mouse, a pen or a finger: black ink on white paper.

export class Pad {
  constructor(canvas, { brush = () => 14, onStroke = () => {} } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { willReadFrequently: true });
    this.brush = brush;
    this.onStroke = onStroke;
    this.inked = false;
    this.last = null;
    this.clear();
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    for (const type of ["pointerup", "pointercancel", "pointerleave"]) {
      canvas.addEventListener(type, () => this.up());
    }
  }

  clear() {
    this.ctx.fillStyle = "#fff";
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.inked = false;
  }

  point(e) {
    const box = this.canvas.getBoundingClientRect();
    return {
      x: ((e.clientX - box.left) * this.canvas.width) / box.width,
      y: ((e.clientY - box.top) * this.canvas.height) / box.height,
    };
  }

  down(e) {
    this.canvas.setPointerCapture?.(e.pointerId);
    this.last = this.point(e);
    this.line(this.last, this.last);
  }

  move(e) {
    if (!this.last) return;
    const next = this.point(e);
    this.line(this.last, next);
    this.last = next;
  }

  up() {
    if (!this.last) return;
    this.last = null;
    this.onStroke();
  }

  line(a, b) {
    const ctx = this.ctx;
    ctx.strokeStyle = "#000";
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = this.brush();
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x, b.y);
    ctx.stroke();
    this.inked = true;
  }

  /** Draw a list of strokes (each a list of [x, y] in canvas pixels), as a person would. */
  strokes(list) {
    for (const stroke of list) {
      const points = stroke.map(([x, y]) => ({ x, y }));
      points.forEach((p, i) => this.line(points[Math.max(i - 1, 0)], p));
    }
    this.onStroke();
  }

  toBlob() {
    return new Promise((resolve) => this.canvas.toBlob(resolve, "image/png"));
  }
}
