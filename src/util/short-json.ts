// short-json.ts — a value from an untrusted file, as short JSON for an error message. JSON.stringify alone
// can overflow the stack on hostile nesting, and can make a message arbitrarily long.
export function shortJson(value: unknown, max = 60): string {
  let s: string;
  try {
    s = JSON.stringify(value) ?? String(value);
  } catch (e) {
    if (e instanceof RangeError) return "(too deeply nested)";
    throw e;
  }
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}
