// 16-bit float formats as raw bit patterns in Uint16Array; rounding is round-to-nearest-even.
// bf16 is the top half of an f32; f16 (IEEE binary16) has 5 exponent and 10 mantissa bits.

export function f32ToBf16(x: Float32Array): Uint16Array {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const u = bits[i];
    // nan stays a (quiet) nan; rounding could otherwise carry it into inf
    if ((u & 0x7fffffff) > 0x7f800000) out[i] = (u >>> 16) | 0x0040;
    else out[i] = (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
  }
  return out;
}

export function bf16ToF32(x: Uint16Array): Float32Array {
  const out = new Float32Array(x.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < x.length; i++) bits[i] = x[i] << 16;
  return out;
}

export function f32ToF16(x: Float32Array): Uint16Array {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = halfFromBits(bits[i]);
  return out;
}

function halfFromBits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15; // rebiased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) return sign | subnormalHalf(mant | 0x800000, 14 - e);
  // normal: drop 13 mantissa bits; a carry out of the mantissa correctly bumps the exponent (up to inf)
  const half = sign | (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  return rest > 0x1000 || (rest === 0x1000 && half & 1) ? half + 1 : half;
}

// m is the 24-bit significand with its implicit bit; shift it down into units of 2^-24
function subnormalHalf(m: number, shift: number): number {
  if (shift > 24) return 0;
  const kept = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  return rest > halfway || (rest === halfway && kept & 1) ? kept + 1 : kept;
}

export function f16ToF32(x: Uint16Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = floatFromHalf(x[i]);
  return out;
}

function floatFromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
