// Loading an adapter module and reading its tools.
//
// An adapter is a module whose default export is a class. Its static `tools` declares each
// tool and its parameters explicitly (JavaScript has no annotations to read them from);
// each tool is the method of the same name. The declarations are checked here, before the
// worker reports ready, so a typo fails the pool's start with a message saying what to
// change rather than a call later.

import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { decode, encode } from "./codec.mjs";
import { AdapterLoadError } from "./errors.mjs";
import { repr, reprList } from "./text.mjs";

/** The parameter types of the proto's vocabulary; a trailing "?" also allows nil. */
export const TYPES = new Set(["int", "float", "str", "bool", "bytes", "list", "dict", "none", "any", "ndarray"]);
const TOOL_KEYS = new Set(["description", "streaming", "params", "acceptsExtra", "exclusive"]);
const PARAM_KEYS = new Set(["type", "required", "default", "description"]);
// Methods the worker itself calls: a tool of one of these names would be called twice over.
const RESERVED = new Set(["constructor", "initialize", "cleanup", "onSessionEnd"]);

const GENERATORS = new Set(["GeneratorFunction", "AsyncGeneratorFunction"]);

/**
 * Import the adapter module at `spec` (a path, absolute or relative to the working
 * directory, or a file: URL) and return its default export, a class.
 * @throws {AdapterLoadError}
 */
export async function loadAdapterClass(spec) {
  let url;
  if (spec.startsWith("file:")) {
    url = spec;
  } else {
    const path = resolve(spec);
    if (!existsSync(path)) {
      throw new AdapterLoadError(`the adapter module ${path} does not exist (--adapter ${spec})`);
    }
    if (!statSync(path).isFile()) throw new AdapterLoadError(`the adapter ${path} is not a file`);
    url = pathToFileURL(path).href;
  }
  let module;
  try {
    module = await import(url);
  } catch (error) {
    const wrapped = new AdapterLoadError(
      `${error?.name ?? "Error"}: ${error?.message ?? String(error)} (raised while importing the adapter module ${spec}; its stack is above)`,
    );
    wrapped.cause = error;
    throw wrapped;
  }
  const cls = module.default;
  if (typeof cls !== "function" || cls.prototype === undefined) {
    const found = Object.keys(module).filter((k) => typeof module[k] === "function");
    throw new AdapterLoadError(
      `the adapter module ${spec} has no default export that is a class ` +
        `(write 'export default class MyAdapter { ... }')` +
        (found.length ? `; its named exports: ${found.join(", ")}` : ""),
    );
  }
  return cls;
}

/**
 * The tools of an adapter class, checked, by name.
 * @param {Function} cls the adapter class
 * @returns {Map<string, object>} name -> ToolInfo (see toolInfo)
 * @throws {AdapterLoadError} a declaration the worker cannot serve (the message says which)
 */
export function collectTools(cls) {
  const declared = cls.tools;
  const where = `adapter ${cls.name || "(anonymous class)"}`;
  if (declared === undefined) {
    throw new AdapterLoadError(
      `${where} declares no tools: give it 'static tools = { name: { params: { ... } } }', ` +
        "one entry per method the host may call",
    );
  }
  if (!isPlainObject(declared)) throw new AdapterLoadError(`${where}: static tools must be a plain object of tool declarations`);
  const tools = new Map();
  for (const [name, decl] of Object.entries(declared)) {
    tools.set(name, toolInfo(cls, where, name, decl));
  }
  return tools;
}

function isPlainObject(v) {
  if (v === null || typeof v !== "object") return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A name or text the description map carries: UTF-8 must hold it, or the handshake fails. */
function checkText(what, text) {
  if (!text.isWellFormed()) throw new AdapterLoadError(`${what} holds a lone surrogate, which no UTF-8 can carry`);
}

function toolInfo(cls, where, name, decl) {
  const what = `${where}, tool ${repr(name)}`;
  checkText(what, name);
  if (name === "") throw new AdapterLoadError(`${where}: a tool's name may not be empty`);
  if (RESERVED.has(name)) {
    throw new AdapterLoadError(`${what}: a tool may not be named ${repr(name)} (the worker calls that method itself)`);
  }
  if (!isPlainObject(decl)) throw new AdapterLoadError(`${what}: its declaration must be a plain object`);
  for (const key of Object.keys(decl)) {
    if (!TOOL_KEYS.has(key)) {
      throw new AdapterLoadError(`${what}: unknown key ${repr(key)}; a tool declares ${[...TOOL_KEYS].join(", ")}`);
    }
  }
  let method;
  try {
    method = cls.prototype[name];
  } catch (error) {
    throw new AdapterLoadError(`${what}: reading its method threw ${error?.name}: ${error?.message}`);
  }
  if (typeof method !== "function") {
    throw new AdapterLoadError(`${what} is declared, but the class has no method ${repr(name)}`);
  }
  const isGenerator = GENERATORS.has(method.constructor?.name);
  for (const key of ["streaming", "acceptsExtra", "exclusive"]) {
    if (decl[key] !== undefined && typeof decl[key] !== "boolean") {
      throw new AdapterLoadError(`${what}: ${key} must be true or false; got ${String(decl[key])}`);
    }
  }
  if (decl.description !== undefined && typeof decl.description !== "string") {
    throw new AdapterLoadError(`${what}: description must be a string`);
  }
  if (decl.description !== undefined) checkText(`${what}: its description`, decl.description);
  if (decl.streaming === false && isGenerator) {
    throw new AdapterLoadError(`${what} is declared streaming: false, but its method is a generator`);
  }
  // A streaming tool is a generator method, or a method that returns an (async) iterable.
  const streaming = decl.streaming ?? isGenerator;
  const params = readParams(what, decl.params ?? {});
  return {
    name,
    description: decl.description ?? "",
    streaming,
    acceptsExtra: decl.acceptsExtra === true,
    exclusive: decl.exclusive === true,
    params,
    names: new Set(params.map((p) => p.name)),
    // How its payloads are named in messages (made once: a call's hot path formats none).
    what: {
      args: `arguments of ${repr(name)}`,
      result: `result of ${repr(name)}`,
      chunk: `chunk of ${repr(name)}`,
    },
    required: params.filter((p) => p.required).map((p) => p.name),
    defaults: params.filter((p) => p.defaultBytes !== null && p.defaultBytes.length > 0),
  };
}

function readParams(what, params) {
  if (!isPlainObject(params)) throw new AdapterLoadError(`${what}: params must be a plain object of parameter declarations`);
  const out = [];
  for (const [name, decl] of Object.entries(params)) {
    const here = `${what}, parameter ${repr(name)}`;
    checkText(here, name);
    if (name === "") throw new AdapterLoadError(`${what}: a parameter's name may not be empty`);
    if (!isPlainObject(decl)) throw new AdapterLoadError(`${here}: its declaration must be a plain object such as { type: "int" }`);
    for (const key of Object.keys(decl)) {
      if (!PARAM_KEYS.has(key)) {
        throw new AdapterLoadError(`${here}: unknown key ${repr(key)}; a parameter declares ${[...PARAM_KEYS].join(", ")}`);
      }
    }
    const type = decl.type ?? "any";
    const base = typeof type === "string" ? type.replace(/\?$/, "") : type;
    if (!TYPES.has(base) || (type.endsWith("?") && (base === "any" || base === "none"))) {
      throw new AdapterLoadError(
        `${here}: type ${repr(String(type))} is not one of ${[...TYPES].join(", ")} (a trailing "?" also allows null)`,
      );
    }
    const hasDefault = Object.hasOwn(decl, "default");
    if (decl.required !== undefined && typeof decl.required !== "boolean") {
      throw new AdapterLoadError(`${here}: required must be true or false`);
    }
    const required = decl.required ?? !hasDefault;
    if (required && hasDefault) throw new AdapterLoadError(`${here}: a required parameter has no default; drop one of them`);
    let defaultBytes = null;
    if (hasDefault) {
      try {
        defaultBytes = encode(decl.default, { what: "its default", limit: 1 << 16 });
      } catch (error) {
        throw new AdapterLoadError(`${here}: ${error.message}`);
      }
    }
    out.push({ name, type, required, defaultBytes });
  }
  return out;
}

/**
 * Why `args` cannot be passed to the tool: [param or null, reason]; null when it can.
 * Missing required arguments and unknown ones (unless it accepts extra) are refused.
 */
export function checkArguments(info, args) {
  if (!isPlainObject(args)) {
    const got = Array.isArray(args) ? "list" : args === null ? "NoneType" : typeof args;
    return [null, `expected a dict of keyword arguments, got ${got}`];
  }
  if (!info.acceptsExtra) {
    for (const key of Object.keys(args)) {
      if (!info.names.has(key)) {
        const takes = info.names.size ? reprList([...info.names].sort()) : "no arguments";
        return [key, `unexpected argument; the tool takes ${takes}`];
      }
    }
  }
  for (const name of info.required) {
    if (!Object.hasOwn(args, name)) return [name, "missing required argument"];
  }
  return null;
}

/** `args` with each declared default filled in where the caller left it out (a fresh copy). */
export function withDefaults(info, args) {
  for (const p of info.defaults) {
    if (!Object.hasOwn(args, p.name)) args[p.name] = decode(p.defaultBytes, { what: "a default" });
  }
  return args;
}
