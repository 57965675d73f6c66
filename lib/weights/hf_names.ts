/**
 * Hugging Face `facebook/dinov2-*` checkpoints hold the same tensors as Meta's
 * torch hub release under other names, with the fused attention projection
 * split into query, key and value. This maps them to the reference names.
 *
 * @module
 */
import type { HostTensor } from "./host_tensor.ts";

/** The HF key whose presence marks HF naming (relative to the prefix). */
const MARKER = "embeddings.patch_embeddings.projection.weight";

/**
 * The prefix in front of HF names (`""` for `Dinov2Model`, `"dinov2."` for
 * `Dinov2ForImageClassification`), or `undefined` when the names are not HF's.
 */
export function huggingFacePrefix(names: Iterable<string>): string | undefined {
  for (const name of names) {
    if (name === MARKER) return "";
    if (name === `dinov2.${MARKER}`) return "dinov2.";
  }
  return undefined;
}

/** True when the keys follow Hugging Face's DINOv2 naming. */
export function isHuggingFaceNaming(names: Iterable<string>): boolean {
  return huggingFacePrefix(names) !== undefined;
}

const EMBEDDINGS: Record<string, string> = {
  "embeddings.cls_token": "cls_token",
  "embeddings.mask_token": "mask_token",
  "embeddings.position_embeddings": "pos_embed",
  "embeddings.register_tokens": "register_tokens",
  "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
  "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
  "layernorm.weight": "norm.weight",
  "layernorm.bias": "norm.bias",
};

/** Per-block renames, `encoder.layer.{i}.<from>` -> `blocks.{i}.<to>`. */
const BLOCK: Record<string, string> = {
  "norm1.weight": "norm1.weight",
  "norm1.bias": "norm1.bias",
  "attention.output.dense.weight": "attn.proj.weight",
  "attention.output.dense.bias": "attn.proj.bias",
  "layer_scale1.lambda1": "ls1.gamma",
  "norm2.weight": "norm2.weight",
  "norm2.bias": "norm2.bias",
  "mlp.fc1.weight": "mlp.fc1.weight",
  "mlp.fc1.bias": "mlp.fc1.bias",
  "mlp.fc2.weight": "mlp.fc2.weight",
  "mlp.fc2.bias": "mlp.fc2.bias",
  "layer_scale2.lambda1": "ls2.gamma",
};

const QKV = /^attention\.attention\.(query|key|value)\.(weight|bias)$/;

/**
 * Renames HF DINOv2 tensors to the reference names; query, key and value are
 * concatenated (in that order) along the first axis into `attn.qkv.*`. Keys
 * outside the backbone (a classifier head, say) are kept under their own
 * names; unknown keys inside it are an error.
 */
export function fromHuggingFace(
  params: Map<string, HostTensor>,
): Map<string, HostTensor> {
  const prefix = huggingFacePrefix(params.keys());
  if (prefix === undefined) {
    throw new Error(
      `Cannot map Hugging Face names: "${MARKER}" is missing, so these are not HF DINOv2 weights`,
    );
  }
  const out = new Map<string, HostTensor>();
  // blocks.{i}.attn.qkv.{weight|bias} -> parts in q, k, v order
  const qkv = new Map<string, (HostTensor | undefined)[]>();
  for (const [full, t] of params) {
    if (!full.startsWith(prefix)) {
      out.set(full, t);
      continue;
    }
    const name = full.slice(prefix.length);
    if (name in EMBEDDINGS) {
      out.set(EMBEDDINGS[name], t);
      continue;
    }
    const m = /^encoder\.layer\.(\d+)\.(.+)$/.exec(name);
    if (m) {
      const [, i, rest] = m;
      if (rest in BLOCK) {
        out.set(`blocks.${i}.${BLOCK[rest]}`, t);
        continue;
      }
      const q = QKV.exec(rest);
      if (q) {
        const key = `blocks.${i}.attn.qkv.${q[2]}`;
        const parts = qkv.get(key) ?? [undefined, undefined, undefined];
        parts[["query", "key", "value"].indexOf(q[1])] = t;
        qkv.set(key, parts);
        continue;
      }
    }
    if (/^(embeddings|encoder|layernorm)\./.test(name)) {
      throw new Error(
        `Cannot map Hugging Face weight "${full}": it has no reference name (SwiGLU and other variants are not supported)`,
      );
    }
    out.set(full, t);
  }
  for (const [key, parts] of qkv) {
    out.set(key, concatRows(key, parts, prefix));
  }
  return out;
}

function concatRows(
  key: string,
  parts: (HostTensor | undefined)[],
  prefix: string,
): HostTensor {
  const [i, kind] = [key.split(".")[1], key.split(".").at(-1)];
  const names = ["query", "key", "value"].map((p) =>
    `${prefix}encoder.layer.${i}.attention.attention.${p}.${kind}`
  );
  const missing = names.filter((_, j) => !parts[j]);
  if (missing.length) {
    throw new Error(
      `Cannot build "${key}": Hugging Face weight "${missing[0]}" is missing`,
    );
  }
  const [q, k, v] = parts as HostTensor[];
  for (const [j, t] of [q, k, v].entries()) {
    const same = t.dtype === q.dtype && t.shape.length === q.shape.length &&
      t.shape.every((s, d) => s === q.shape[d]);
    if (!same || q.shape.length < 1) {
      throw new Error(
        `Cannot build "${key}": "${
          names[j]
        }" is ${t.dtype} [${t.shape}], but "${
          names[0]
        }" is ${q.dtype} [${q.shape}]`,
      );
    }
  }
  const n = q.data.length;
  const data =
    new (q.data.constructor as new (n: number) => HostTensor["data"])(
      3 * n,
    );
  // Typed arrays of one kind; `set` is safe across them.
  (data as Float32Array).set(q.data as Float32Array, 0);
  (data as Float32Array).set(k.data as Float32Array, n);
  (data as Float32Array).set(v.data as Float32Array, 2 * n);
  return { dtype: q.dtype, shape: [3 * q.shape[0], ...q.shape.slice(1)], data };
}
