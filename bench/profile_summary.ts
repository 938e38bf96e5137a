/**
 * Summarizes a V8 `.cpuprofile` (as written by `deno run --cpu-prof`): self
 * time per function and per source file.
 *
 * @module
 */

/** One node of a V8 CPU profile. */
export interface ProfileNode {
  /** Node id. */
  id: number;
  /** The function. */
  callFrame: { functionName: string; url: string; lineNumber: number };
  /** Samples whose top frame is this node. */
  hitCount?: number;
  /** Child node ids. */
  children?: number[];
}

/** A V8 CPU profile. */
export interface CpuProfile {
  /** All nodes. */
  nodes: ProfileNode[];
  /** Start time, µs. */
  startTime: number;
  /** End time, µs. */
  endTime: number;
  /** Node id per sample. */
  samples?: number[];
}

/** Self time of one function or file. */
export interface ProfileEntry {
  /** `function (file:line)` or a file name. */
  name: string;
  /** Share of busy (non-idle) samples, percent. */
  selfPercent: number;
}

function shortUrl(url: string): string {
  if (url === "") return "(native)";
  const match = url.match(/(src\/.*|bench\/.*|ext:.*|node:.*)$/);
  return match ? match[1] as string : url.split("/").slice(-2).join("/");
}

/**
 * Self-time shares by function and by file, largest first.
 *
 * @param profile The parsed profile.
 * @param top Entries to keep per list.
 * @returns The two lists.
 */
export function summarizeProfile(
  profile: CpuProfile,
  top = 15,
): { functions: ProfileEntry[]; files: ProfileEntry[] } {
  const hits = new Map<number, number>();
  if (profile.samples !== undefined) {
    for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  } else {
    for (const node of profile.nodes) hits.set(node.id, node.hitCount ?? 0);
  }
  // Shares are of busy samples: idle time depends on the run, not the code.
  let total = 0;
  for (const node of profile.nodes) {
    if (node.callFrame.functionName === "(idle)") hits.delete(node.id);
  }
  for (const count of hits.values()) total += count;
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const node of profile.nodes) {
    const count = hits.get(node.id) ?? 0;
    if (count === 0) continue;
    const frame = node.callFrame;
    const file = shortUrl(frame.url);
    const name = `${frame.functionName || "(anonymous)"} (${file}:${
      frame.lineNumber + 1
    })`;
    const key = frame.url === "" ? frame.functionName || "(native)" : name;
    byFunction.set(key, (byFunction.get(key) ?? 0) + count);
    const fileKey = frame.url === "" ? frame.functionName || "(native)" : file;
    byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + count);
  }
  const toEntries = (map: Map<string, number>): ProfileEntry[] =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, count]) => ({
        name,
        selfPercent: Math.round((count / Math.max(1, total)) * 1000) / 10,
      }));
  return { functions: toEntries(byFunction), files: toEntries(byFile) };
}

/**
 * Formats a summary for the terminal.
 *
 * @param title Heading.
 * @param summary From {@linkcode summarizeProfile}.
 * @returns Text.
 */
export function formatProfile(
  title: string,
  summary: { functions: ProfileEntry[]; files: ProfileEntry[] },
): string {
  const lines = [`\n## ${title}\n`, "self % by file:"];
  for (const e of summary.files) {
    lines.push(`  ${e.selfPercent.toFixed(1).padStart(5)}  ${e.name}`);
  }
  lines.push("self % by function:");
  for (const e of summary.functions) {
    lines.push(`  ${e.selfPercent.toFixed(1).padStart(5)}  ${e.name}`);
  }
  return lines.join("\n");
}
