/**
 * Parity sections for the model and the training step: what the project
 * computes from the golden inputs, under the golden key names.
 *
 * Every size (width, depth, heads, input size, classes, steps) comes from the
 * files.
 *
 * @module
 */
import { readFloats, tf, tidyHostAsync } from "../backend/tf.ts";
import type { Tensor } from "../backend/tf.ts";
import { Dinov2 } from "../models/dinov2.ts";
import { Rein } from "../models/rein.ts";
import { isTrainableName, Learner } from "../train/learner.ts";
import { f32, type HostTensor, toFloat32 } from "../weights/host_tensor.ts";
import { loadDinov2Weights } from "../weights/dinov2_weights.ts";
import {
  readSafetensors,
  readSafetensorsHeader,
} from "../weights/safetensors.ts";
import { tinyGradientMask } from "./compare.ts";

/** Computed tensors plus, per parameter key, entries under the looser Adam bound. */
export interface SectionResult {
  tensors: Map<string, HostTensor>;
  noisyEntries: Map<string, Uint8Array>;
}

/** The golden file's `[B, 3, H, W]` images as an NHWC tensor. */
export function nchwToNhwc(t: HostTensor): Tensor {
  if (t.shape.length !== 4 || t.shape[1] !== 3) {
    throw new RangeError(`Expected images as [B, 3, H, W], got [${t.shape}]`);
  }
  return tf.tidy(() =>
    tf.transpose(tf.tensor(toFloat32(t), t.shape, "float32"), [0, 2, 3, 1])
  );
}

/** Integer labels of a golden tensor (I64 or I32) as Int32Array. */
export function labelsOf(t: HostTensor): Int32Array {
  return Int32Array.from(toFloat32(t));
}

/** A computed tensor on the host (called where its values are cached, see `Learner.step`). */
function host(t: Tensor): HostTensor {
  return f32([...t.shape], new Float32Array(t.dataSync() as Float32Array));
}

/** A computed tensor on the host, read without blocking (webgpu). */
async function hostAsync(t: Tensor): Promise<HostTensor> {
  return f32([...t.shape], new Float32Array(await readFloats(t)));
}

function needKey(
  map: Map<string, HostTensor>,
  key: string,
  file: string,
): HostTensor {
  const t = map.get(key);
  if (!t) throw new Error(`${file}: missing key "${key}"`);
  return t;
}

/**
 * The head count of the fixtures' tiny model. Only `rein_model.safetensors`
 * records its variant; the other model files share it (and widths outside
 * Meta's table cannot be inferred from shapes).
 */
async function fixtureHeads(dir: string): Promise<number | undefined> {
  try {
    const { metadata } = await readSafetensorsHeader(
      `${dir}/rein_model.safetensors`,
    );
    const heads = JSON.parse(metadata.variant ?? "{}").num_heads;
    return typeof heads === "number" ? heads : undefined;
  } catch {
    return undefined;
  }
}

/** Reference-named trainable tensors of a full-model file. */
function trainable(params: Map<string, HostTensor>): Map<string, HostTensor> {
  return new Map([...params].filter(([k]) => isTrainableName(k)));
}

/**
 * The Rein section: backbone forward (with and without Rein, two input
 * sizes), the Rein layer alone, loss, gradients and one Adam step, from
 * `rein_model.safetensors` and the inputs of `rein_golden.safetensors`.
 */
export async function reinParity(dir: string): Promise<SectionResult> {
  const modelPath = `${dir}/rein_model.safetensors`;
  const goldenPath = `${dir}/rein_golden.safetensors`;
  const { variant, params } = await loadDinov2Weights(modelPath);
  const { tensors: golden } = await readSafetensors(goldenPath);
  const backbone = new Dinov2(variant, params);
  const learner = new Learner("rein", backbone, [trainable(params)]);
  const out = new Map<string, HostTensor>();
  const noisyEntries = new Map<string, Uint8Array>();
  try {
    await tidyHostAsync(async () => {
      const rein = new Rein(learner.groups[0].params);
      const inputs: [string, string][] = [["input", ""], ["input224", "224"]];
      for (const [key, suffix] of inputs) {
        const t = golden.get(key);
        if (!t) continue;
        const x = nchwToNhwc(t);
        const [, h, w] = x.shape as number[];
        out.set(
          `pos_embed${suffix}`,
          await hostAsync(backbone.posEmbed(h, w)),
        );
        const plain = backbone.forwardFeatures(x);
        out.set(`tokens_no_rein${suffix}`, await hostAsync(plain));
        if (suffix === "") {
          out.set("norm_cls", await hostAsync(backbone.normedCls(plain)));
        }
        out.set(
          `tokens_rein${suffix}`,
          await hostAsync(backbone.forwardFeatures(x, rein)),
        );
      }
      const layerIn = golden.get("rein_layer_in");
      if (layerIn) {
        // The reference calls reins.forward(feats, layer=1, ...).
        const layer = Math.min(1, rein.depth - 1);
        const y = rein.apply(
          tf.tensor(toFloat32(layerIn), layerIn.shape, "float32"),
          layer,
        );
        out.set("rein_layer_out", await hostAsync(y));
      }
    });
    const x = nchwToNhwc(needKey(golden, "input", goldenPath));
    const labels = labelsOf(needKey(golden, "labels", goldenPath));
    await learner.download();
    const before = learner.groups[0].params.toHost();
    const outputs = await learner.step(x, labels, {
      onGradients: ([grads]) => {
        for (const [name, g] of grads) {
          const gh = host(g);
          out.set(`grad.${name}`, gh);
          noisyEntries.set(
            `adam1.${name}`,
            tinyGradientMask(gh, before.get(name)!),
          );
        }
      },
    });
    x.dispose();
    const k = learner.numClasses;
    out.set("rein_logits", f32([labels.length, k], outputs.logits.rein!));
    out.set("rein_loss", f32([1], new Float32Array([outputs.losses.rein])));
    await learner.download();
    for (const [name, t] of learner.groups[0].params.toHost()) {
      out.set(`adam1.${name}`, t);
    }
  } finally {
    learner.dispose();
    backbone.dispose();
  }
  return { tensors: out, noisyEntries };
}

/**
 * The CUFIT section: `step{s}` batches of `cufit_golden.safetensors` through
 * the learner from `cufit_model1/2.safetensors`, then both models' parameters.
 */
export async function cufitParity(dir: string): Promise<SectionResult> {
  const goldenPath = `${dir}/cufit_golden.safetensors`;
  const numHeads = await fixtureHeads(dir);
  const m1 = await loadDinov2Weights(`${dir}/cufit_model1.safetensors`, {
    numHeads,
  });
  const m2 = await readSafetensors(`${dir}/cufit_model2.safetensors`);
  const { tensors: golden } = await readSafetensors(goldenPath);
  const backbone = new Dinov2(m1.variant, m1.params);
  const learner = new Learner("cufit", backbone, [
    trainable(m1.params),
    trainable(m2.tensors),
  ]);
  const out = new Map<string, HostTensor>();
  const noisyEntries = new Map<string, Uint8Array>();
  try {
    const k = learner.numClasses;
    for (let s = 0; golden.has(`step${s}.inputs`); s++) {
      const x = nchwToNhwc(golden.get(`step${s}.inputs`)!);
      const labels = labelsOf(needKey(golden, `step${s}.targets`, goldenPath));
      await learner.download();
      const before = learner.groups.map((g) => g.params.toHost());
      const o = await learner.step(x, labels, {
        onGradients: (grads) => {
          // Entries whose effective gradient is tiny at any step get the looser bound.
          grads.forEach((groupGrads, gi) => {
            for (const [name, g] of groupGrads) {
              const key = `model${gi + 1}.${name}`;
              const mask = tinyGradientMask(host(g), before[gi].get(name)!);
              const prev = noisyEntries.get(key);
              if (prev) {
                for (let i = 0; i < mask.length; i++) mask[i] |= prev[i];
              }
              noisyEntries.set(key, mask);
            }
          });
        },
      });
      x.dispose();
      const b = labels.length;
      out.set(`step${s}.linear_logits`, f32([b, k], o.logits.lpm!));
      out.set(`step${s}.rein1_logits`, f32([b, k], o.logits.iam!));
      out.set(`step${s}.rein2_logits`, f32([b, k], o.logits.lam!));
      out.set(`step${s}.linear_agrees`, {
        dtype: "U8",
        shape: [b],
        data: o.masks.lpm!,
      });
      out.set(`step${s}.rein1_agrees`, {
        dtype: "U8",
        shape: [b],
        data: o.masks.iam!,
      });
      for (
        const [key, name] of [["loss_linear", "linear"], [
          "loss_rein1",
          "rein1",
        ], ["loss_rein2", "rein2"]]
      ) {
        out.set(
          `step${s}.${key}`,
          f32([1], new Float32Array([o.losses[name]])),
        );
      }
    }
    await learner.download();
    learner.groups.forEach((g, gi) => {
      for (const [name, t] of g.params.toHost()) {
        out.set(`model${gi + 1}.${name}`, t);
      }
    });
  } finally {
    learner.dispose();
    backbone.dispose();
  }
  return { tensors: out, noisyEntries };
}

/**
 * Loads `dinov2_backbone.pth` and `.safetensors` and checks that they hold
 * identical tensors; returns a description of the first difference, or null.
 */
export async function backboneFilesAgree(dir: string): Promise<string | null> {
  const numHeads = await fixtureHeads(dir);
  const a = await loadDinov2Weights(`${dir}/dinov2_backbone.pth`, { numHeads });
  const b = await loadDinov2Weights(`${dir}/dinov2_backbone.safetensors`, {
    numHeads,
  });
  const keys = new Set([...a.params.keys(), ...b.params.keys()]);
  for (const key of keys) {
    const x = a.params.get(key);
    const y = b.params.get(key);
    if (!x || !y) {
      return `"${key}" is only in the ${x ? ".pth" : ".safetensors"} file`;
    }
    if (x.shape.join(",") !== y.shape.join(",")) {
      return `"${key}": [${x.shape}] in .pth, [${y.shape}] in .safetensors`;
    }
    const xd = toFloat32(x);
    const yd = toFloat32(y);
    for (let i = 0; i < xd.length; i++) {
      if (xd[i] !== yd[i] && !(Number.isNaN(xd[i]) && Number.isNaN(yd[i]))) {
        return `"${key}" differs at element ${i}: ${xd[i]} vs ${yd[i]}`;
      }
    }
  }
  return null;
}
