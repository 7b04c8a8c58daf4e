// A Node.js adapter: text statistics, a stream of running totals, and a host tool call.
// Tools and their parameters are declared (JavaScript has no annotations); the host checks
// every call against these declarations before sending it.
export default class TextStats {
  static tools = {
    word_count: {
      description: "Count the words of a text",
      params: { text: { type: "str", required: true } },
    },
    running_total: {
      description: "Yield the running total of the numbers, one at a time",
      streaming: true,
      params: { numbers: { type: "list", required: true } },
    },
    greet: {
      description: "Greet a user the host looks up",
      params: { user_id: { type: "int", required: true } },
    },
  };

  async initialize() {
    this.calls = 0;
  }

  async word_count({ text }, ctx) {
    this.calls += 1;
    const words = text.split(/\s+/).filter(Boolean);
    ctx.progress(words.length, words.length, "counted");
    return { words: words.length, pid: process.pid, calls: this.calls };
  }

  async *running_total({ numbers }) {
    let total = 0;
    for (const n of numbers) {
      total += n;
      yield total;
    }
  }

  async greet({ user_id }, ctx) {
    const user = await ctx.host.lookup_user({ user_id });
    return `hello, ${user.name}`;
  }
}
