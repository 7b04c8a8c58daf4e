// How the encoder recognises the value classes: by a registered symbol, not `instanceof`, so
// a value made by another copy of this package (an adapter's own node_modules beside the
// worker's) travels the same.

export const VALUE = Symbol.for("snakepit-trio-worker.value");
