// Text helpers shared by error frames, messages and events.

/** A string as Python's repr() shows it, so messages read the same from every worker. */
export function repr(value) {
  if (typeof value !== "string") return String(value);
  const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
  const escaped = value
    .replace(/\\/g, "\\\\")
    .replace(/\n/g, "\\n")
    .replace(/\r/g, "\\r")
    .replace(/\t/g, "\\t");
  return quote + (quote === "'" ? escaped.replace(/'/g, "\\'") : escaped) + quote;
}

/** A list of names as Python shows one: ['a', 'b']. */
export function reprList(names) {
  return `[${names.map(repr).join(", ")}]`;
}

/**
 * `text`, or at most `limit` characters of it and a marker saying how much went.
 * `middle`: keep its start and its end (a stack's last lines matter too), else its start.
 */
export function cut(text, limit, { middle = false } = {}) {
  if (text.length <= limit) return text;
  const marker = ` [... ${text.length - limit} characters cut ...] `;
  if (!middle) return text.slice(0, limit) + marker;
  const half = Math.floor(limit / 2);
  return text.slice(0, half) + marker + text.slice(text.length - half);
}

/**
 * `text` as the wire can carry it: a lone surrogate (which no UTF-8 holds) replaced.
 * msgpack would write it as invalid UTF-8, and the host would refuse the whole batch.
 */
export function wire(text) {
  return text.isWellFormed() ? text : text.toWellFormed();
}

/** A short description of a value for messages: its type and a glimpse of it. */
export function shown(value) {
  let text;
  try {
    if (typeof value === "string") text = repr(value);
    else if (typeof value === "function") text = `function ${value.name || "(anonymous)"}`;
    else if (typeof value === "symbol") text = value.toString();
    else if (typeof value === "bigint") text = `${value}n`;
    else if (value === null || typeof value !== "object") text = String(value);
    else text = `${value.constructor?.name ?? "Object"} object`;
  } catch {
    text = "<unshowable>";
  }
  return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}
