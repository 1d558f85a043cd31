// Drives a running `longspan serve` with the official openai package: chat, completion, streaming,
// stop sequences, logprobs, several choices (n), penalties, errors (unimplemented parameters refused), concurrent requests, a cancelled stream, prefix reuse.
// Environment: LONGSPAN_BASE_URL (e.g. http://127.0.0.1:8080/v1), LONGSPAN_API_KEY, LONGSPAN_MODEL.
// Prints one line per check and "N passed, N failed"; exits 1 when a check fails.
import assert from "node:assert/strict";
import OpenAI from "openai";

const baseURL = process.env.LONGSPAN_BASE_URL;
const apiKey = process.env.LONGSPAN_API_KEY ?? "none";
const model = process.env.LONGSPAN_MODEL;
if (!baseURL || !model) {
  console.error("set LONGSPAN_BASE_URL and LONGSPAN_MODEL");
  process.exit(2);
}
// no retries: a 429 or 5xx must show, not be hidden by the client's back-off
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120_000 });
const greedy = { model, temperature: 0 };

async function metrics() {
  const r = await fetch(baseURL.replace(/\/v1$/, "") + "/metrics");
  return r.text();
}

async function expectError(promise, status, code) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `an APIError, got ${e}`);
    assert.equal(e.status, status, e.message);
    if (code) assert.equal(e.code, code);
    assert.ok(e.error?.message, "an error message");
    return e;
  }
  assert.fail(`expected HTTP ${status}`);
}

const checks = {
  async modelsList() {
    const list = await client.models.list();
    assert.deepEqual(list.data.map((m) => m.id), [model]);
  },

  async completion() {
    const r = await client.completions.create({ ...greedy, prompt: "Once upon a time", max_tokens: 20 });
    assert.match(r.choices[0].text, /^, there was a little girl named Lily\./);
    assert.equal(r.choices[0].finish_reason, "length");
    assert.equal(r.usage.completion_tokens, 20);
  },

  async chat() {
    const r = await client.chat.completions.create({ ...greedy, messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 16 });
    assert.equal(r.object, "chat.completion");
    assert.equal(r.choices[0].message.role, "assistant");
    assert.ok(r.choices[0].message.content.length > 0);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  },

  async streamingChatEqualsTheWholeAnswer() {
    const req = { ...greedy, messages: [{ role: "system", content: "Tell a story." }, { role: "user", content: "Tom had a dog." }], max_tokens: 24 };
    const whole = await client.chat.completions.create(req);
    const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
    let text = "", finish = null, usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      const c = chunk.choices[0];
      if (!c) continue;
      text += c.delta?.content ?? "";
      if (c.finish_reason) finish = c.finish_reason;
    }
    assert.equal(text, whole.choices[0].message.content);
    assert.equal(finish, whole.choices[0].finish_reason);
    assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
  },

  async stopSequences() {
    const r = await client.completions.create({ ...greedy, prompt: "Once upon a time", max_tokens: 40, stop: ["Lily", "zzz"] });
    assert.equal(r.choices[0].text, ", there was a little girl named ");
    assert.equal(r.choices[0].finish_reason, "stop");
    let text = "";
    for await (const chunk of await client.completions.create({ ...greedy, prompt: "Once upon a time", max_tokens: 40, stop: "Lily", stream: true })) {
      text += chunk.choices[0]?.text ?? "";
    }
    assert.equal(text, ", there was a little girl named ");
  },

  async errors() {
    await expectError(client.chat.completions.create({ ...greedy, model: "no-such-model", messages: [{ role: "user", content: "x" }] }), 404, "model_not_found");
    await expectError(client.chat.completions.create({ ...greedy, messages: [{ role: "user", content: "x" }], n: 17 }), 400);
    await expectError(client.completions.create({ ...greedy, prompt: "Once", max_tokens: 1_000_000 }), 400, "context_length_exceeded");
    await expectError(client.completions.create({ ...greedy, prompt: "Once", temperature: 9 }), 400);
    const wrongKey = new OpenAI({ baseURL, apiKey: apiKey + "x", maxRetries: 0 });
    await expectError(wrongKey.models.list(), 401, "invalid_api_key");
  },

  async chatLogprobs() {
    const r = await client.chat.completions.create({ ...greedy, messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 6, logprobs: true, top_logprobs: 3 });
    const content = r.choices[0].logprobs.content;
    assert.equal(content.length, r.usage.completion_tokens);
    assert.equal(content.map((e) => e.token).join(""), r.choices[0].message.content);
    for (const e of content) {
      assert.ok(e.logprob <= 0, `logprob ${e.logprob}`);
      assert.equal(e.top_logprobs.length, 3);
      // greedy: the chosen token is the most likely one
      assert.equal(e.top_logprobs[0].token, e.token);
      assert.ok(e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob);
    }
  },

  async severalChoicesAndPenalties() {
    const msg = [{ role: "user", content: "Once upon a time" }];
    const r = await client.chat.completions.create({ model: "stories260K", messages: msg, max_tokens: 8, n: 3, temperature: 1.2, seed: 11, logprobs: true });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
    assert.equal(r.usage.completion_tokens, r.choices.reduce((s, c) => s + c.logprobs.content.length, 0));
    const seen = new Set();
    const stream = await client.chat.completions.create({ model: "stories260K", messages: msg, max_tokens: 4, n: 2, temperature: 1, seed: 3, stream: true });
    for await (const chunk of stream) for (const c of chunk.choices) if (c.finish_reason) seen.add(c.index);
    assert.deepEqual([...seen].sort(), [0, 1]);
    const plain = await client.completions.create({ ...greedy, prompt: "Once upon a time", max_tokens: 30 });
    const penalized = await client.completions.create({ ...greedy, prompt: "Once upon a time", max_tokens: 30, frequency_penalty: 1.5, presence_penalty: 1 });
    assert.notEqual(penalized.choices[0].text, plain.choices[0].text);
  },

  async echoScoresThePrompt() {
    // how evaluation harnesses score text through the completions API: echo, no new tokens, logprobs
    const r = await client.completions.create({ ...greedy, prompt: "Once upon a time, there was a girl.", max_tokens: 0, echo: true, logprobs: 1 });
    const c = r.choices[0];
    assert.equal(c.text, "Once upon a time, there was a girl.");
    assert.equal(r.usage.completion_tokens, 0);
    assert.ok(c.logprobs.token_logprobs.length > 5);
    for (const lp of c.logprobs.token_logprobs) assert.ok(lp <= 0, `logprob ${lp}`);
    assert.equal(c.logprobs.tokens.join("").trim(), c.text);
  },

  async unimplementedParametersAreRefusedNotIgnored() {
    const msg = [{ role: "user", content: "x" }];
    await expectError(client.chat.completions.create({ ...greedy, messages: msg, tools: [{ type: "function", function: { name: "f", parameters: {} } }] }), 400);
    await expectError(client.chat.completions.create({ ...greedy, messages: msg, response_format: { type: "json_object" } }), 400);
    const ok = await client.chat.completions.create({ ...greedy, messages: msg, max_completion_tokens: 2, response_format: { type: "text" } });
    assert.equal(ok.usage.completion_tokens, 2);
  },

  async concurrentRequests() {
    const prompts = ["Once upon a time", "Tom had a dog.", "The sun was", "One day, Lily", "The cat", "A big tree", "Sam and Amy", "It was a rainy day"];
    const one = (p) => client.completions.create({ ...greedy, prompt: p, max_tokens: 24 }).then((r) => r.choices[0].text);
    const together = await Promise.all(prompts.map(one));
    for (let i = 0; i < prompts.length; i++) assert.equal(together[i], await one(prompts[i]), `prompt ${i} alone and together`);
  },

  async cancelledStreamFreesItsSlot() {
    const stream = await client.completions.create({ ...greedy, prompt: "Once upon a time", max_tokens: 1500, stream: true });
    let chunks = 0;
    for await (const chunk of stream) {
      if (++chunks === 3) break;   // leaving the loop aborts the request
    }
    assert.equal(chunks, 3);
    let m = "";
    for (let i = 0; i < 600; i++) {
      m = await metrics();
      if (/^longspan_requests_running 0$/m.test(m)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(m, /^longspan_requests_running 0$/m, "the cancelled generation stopped");
    const after = await client.completions.create({ ...greedy, prompt: "Once", max_tokens: 4 });
    assert.equal(after.choices[0].finish_reason, "length");
  },

  async prefixReuse() {
    const doc = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
      + "One day, she saw a big red ball under a tree. She ran to get it and kicked it high into the sky. ";
    const first = await client.completions.create({ ...greedy, prompt: doc + "Lily was", max_tokens: 16 });
    const second = await client.completions.create({ ...greedy, prompt: doc + "The ball", max_tokens: 16 });
    const cached = second.usage.prompt_tokens_details?.cached_tokens ?? 0;
    assert.ok(cached > second.usage.prompt_tokens / 2, `cached ${cached} of ${second.usage.prompt_tokens}`);
    assert.ok(first.choices[0].text.length > 0);
  },
};

let passed = 0, failed = 0;
for (const [name, check] of Object.entries(checks)) {
  try {
    await check();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}: ${e?.stack ?? e}`);
  }
}
console.log(`openai-client: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
