/* mlmtool payload decoder: shared by every interactive page (view.js, compare.js).
 *
 * The pages receive arrays packed by mlmtool.render.html_view.encode_attention: base64 text
 * (RFC 4648) of optionally deflate-compressed bytes (zlib, RFC 1950; inflated with the
 * browser's DecompressionStream), holding uint8 levels (weight = level / scale) or
 * little-endian IEEE 754 half floats, in C order. Colour maps travel as hex RGB triplets.
 * Plain browser JavaScript, no library, no network. The page builder
 * (mlmtool/render/_document.py) inlines this file before the page's own script.
 */
const mlmtoolDecode = (function () {
  "use strict";

  // "ff0080..." -> Uint8Array [255, 0, 128, ...]
  function hexBytes(hex) {
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
    return out;
  }

  function base64Bytes(text) {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function inflate(bytes) {
    if (typeof DecompressionStream === "undefined") {
      throw new Error("this browser has no DecompressionStream (Chrome 80+, Firefox 113+, Safari 16.4+ do); " +
                      "render the page with compress=False");
    }
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  function halfToFloat(h) {  // IEEE 754 binary16 -> number
    const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
    if (e === 0) return s * Math.pow(2, -14) * (f / 1024);
    if (e === 31) return f ? NaN : s * Infinity;
    return s * Math.pow(2, e - 15) * (1 + f / 1024);
  }

  // one packed array -> {levels: Uint8Array 0..255, values: Float32Array of weights, or null
  // for uint8 (then weight = level / scale)}; throws when the data does not fit its shape
  async function unpack(a, what) {
    let bytes = base64Bytes(a.data);
    if (a.compression === "deflate") bytes = await inflate(bytes);
    const count = a.shape.reduce((x, y) => x * y, 1);
    if (a.dtype === "uint8") {
      if (bytes.length !== count) throw new Error(what + " data has the wrong size");
      return {levels: bytes, values: null};
    }
    if (bytes.length !== 2 * count) throw new Error(what + " data has the wrong size");
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const vals = new Float32Array(count), levs = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const v = halfToFloat(view.getUint16(2 * i, true));
      vals[i] = v;
      levs[i] = Math.max(0, Math.min(255, Math.round(v * 255)));
    }
    return {levels: levs, values: vals};
  }

  // one packed array -> Float32Array of its weights (length = product of its shape)
  async function weights(a, what) {
    const u = await unpack(a, what);
    if (u.values) return u.values;
    const out = new Float32Array(u.levels.length);
    for (let i = 0; i < out.length; i++) out[i] = u.levels[i] / a.scale;
    return out;
  }

  return {hexBytes, unpack, weights};
})();
