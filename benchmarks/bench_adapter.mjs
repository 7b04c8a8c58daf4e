// The Node.js twin of bench_adapter.py and stream_adapter.py: the same tools, so the same
// workloads run on Python and Node.js workers in one run (bench_runtimes.py).
import { setTimeout as sleep } from "node:timers/promises";

export default class Bench {
  static tools = {
    ping: { params: { x: { type: "int", required: true } } },
    echo: { params: { value: { type: "any", required: true } } },
    nap_pid: { params: { seconds: { type: "float", required: true } } },
    achunks: {
      streaming: true,
      params: {
        n: { type: "int", required: true },
        size: { type: "int", required: false, default: 8 },
      },
    },
  };

  async ping({ x }) {
    return x;
  }

  async echo({ value }) {
    return value;
  }

  async nap_pid({ seconds }) {
    await sleep(seconds * 1000);
    return process.pid;
  }

  async *achunks({ n, size = 8 }) {
    const payload = new Uint8Array(size).fill(120); // b"x" * size
    for (let i = 0; i < n; i++) yield payload;
  }
}
