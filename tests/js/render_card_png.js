#!/usr/bin/env node
// Render a Teams message (Workflows envelope or bare Adaptive Card) to a PNG with Microsoft's
// adaptivecards renderer in headless Chromium (Debian package `chromium`). Not part of `make test`.
//
//   .venv/bin/python -m remediation demo --json \
//     | .venv/bin/python -c 'import json,sys; from remediation.notify import teams; print(json.dumps(teams.card(json.load(sys.stdin))))' \
//     | node tests/js/render_card_png.js docs/teams-card.png
//
// Markdown goes through markdown-it, as adaptivecards does when it is present; the host config
// approximates Teams' light theme, so the picture shows layout and content, not Teams pixel for pixel.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");

const root = path.join(__dirname, "..", "..");
const out = path.resolve(process.argv[2] || "teams-card.png");
const browser = process.env.CHROMIUM || "chromium";
const width = 720;

const hostConfig = {
  fontFamily: "'Segoe UI', 'Noto Sans', 'DejaVu Sans', sans-serif, 'Noto Color Emoji'",
  spacing: { small: 4, default: 8, medium: 16, large: 24, extraLarge: 32, padding: 16 },
  separator: { lineThickness: 1, lineColor: "#E1DFDD" },
  fontSizes: { small: 12, default: 14, medium: 16, large: 20, extraLarge: 24 },
  fontWeights: { lighter: 200, default: 400, bolder: 600 },
  supportsInteractivity: true,
  containerStyles: {
    default: { backgroundColor: "#FFFFFF", foregroundColors: colors("#242424") },
    emphasis: { backgroundColor: "#F5F5F5", foregroundColors: colors("#242424") },
    accent: { backgroundColor: "#E8EBFA", foregroundColors: colors("#242424") },
    good: { backgroundColor: "#E7F2DA", foregroundColors: colors("#242424") },
    attention: { backgroundColor: "#FCF4F6", foregroundColors: colors("#242424") },
    warning: { backgroundColor: "#FBF6D9", foregroundColors: colors("#242424") },
  },
  actions: { maxActions: 5, spacing: "default", buttonSpacing: 8, actionsOrientation: "horizontal",
             actionAlignment: "left", showCard: { actionMode: "inline", inlineTopMargin: 8 } },
  factSet: { title: { weight: "bolder", wrap: true, maxWidth: 200 }, value: { wrap: true }, spacing: 8 },
};

function colors(text) {
  return {
    default: { default: text, subtle: "#616161" },
    accent: { default: "#5B5FC7", subtle: "#5B5FC7" },
    good: { default: "#0E700E", subtle: "#0E700E" },
    warning: { default: "#835B00", subtle: "#835B00" },
    attention: { default: "#C4314B", subtle: "#C4314B" },
  };
}

function page(card) {
  const read = (p) => fs.readFileSync(path.join(root, "node_modules", p), "utf8");
  return `<!doctype html><html><head><meta charset="utf-8">
<style>${read("adaptivecards/dist/adaptivecards.css")}
body { margin: 0; background: #F0F0F0; }
#card { width: ${width - 48}px; margin: 24px; background: #FFF; border-radius: 6px;
        box-shadow: 0 1px 4px rgba(0,0,0,.15); overflow: hidden; }
.ac-pushButton { border: 1px solid #D1D1D1; background: #FFF; border-radius: 4px; padding: 6px 12px;
                 font: 600 14px 'Segoe UI', 'Noto Sans', sans-serif; color: #242424; }
.ac-richTextBlock span { white-space: pre-wrap; }
.ac-fact-value, .ac-fact-value *, .ac-textBlock, .ac-richTextBlock { overflow-wrap: anywhere; }
.ac-fact-title, .ac-fact-title * { overflow-wrap: normal; white-space: nowrap; }
</style></head><body><div id="card"></div>
<script>${read("markdown-it/dist/browser/markdown-it.umd.min.js")}</script>
<script>${read("adaptivecards/dist/adaptivecards.js")}</script>
<script>
  const card = new AdaptiveCards.AdaptiveCard();
  card.hostConfig = new AdaptiveCards.HostConfig(${JSON.stringify(hostConfig)});
  card.parse(${JSON.stringify(card)});
  document.getElementById("card").appendChild(card.render());
  document.title = "height=" + Math.ceil(document.getElementById("card").getBoundingClientRect().bottom + 24);
</script></body></html>`;
}

function run(args) {
  const common = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-device-scale-factor=1"];
  const options = { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], maxBuffer: 64 << 20 };
  return execFileSync(browser, [...common, ...args], options);
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  const message = JSON.parse(input);
  const card = message.type === "message" ? message.attachments[0].content : message;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "card-png-"));
  const html = path.join(dir, "card.html");
  fs.writeFileSync(html, page(card));
  const url = "file://" + html;
  // First pass: let the page measure itself; second pass: a screenshot of exactly that height.
  const dom = run([`--window-size=${width},2000`, "--virtual-time-budget=2000", "--dump-dom", url]);
  const match = dom.match(/<title>height=(\d+)<\/title>/);
  if (!match) {
    process.stderr.write("the card did not render (no height in the page title)\n");
    process.exit(1);
  }
  const height = Math.min(Number(match[1]), 16000);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  run([`--window-size=${width},${height}`, "--virtual-time-budget=2000", `--screenshot=${out}`, url]);
  process.stdout.write(`${out} (${width}x${height})\n`);
});
