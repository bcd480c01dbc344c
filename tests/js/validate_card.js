#!/usr/bin/env node
// Validate Teams messages (Workflows webhook envelopes, or bare Adaptive Cards) with Microsoft's own
// `adaptivecards` library, and render their markdown with markdown-it (the renderer adaptivecards
// uses when present) to see which links and emphasis a reader would get.
//
// Input (stdin): one message, or a JSON array of messages.
// Output (stdout): a JSON array, one entry per message:
//   {"errors": [...], "warnings": [...], "bytes": N, "links": [href...], "emphasis": [text...],
//    "textFunctions": N}
// errors: envelope shape, card version > 1.4, Action.Submit / Action.Execute (webhooks do not support
// them), elements newer than the card's version, and every parse/validation event of the library
// except hints and deprecations (which are warnings). Exit code 0 unless the input is not JSON.
"use strict";

const path = require("path");
const AC = require(path.join(__dirname, "..", "..", "node_modules", "adaptivecards", "dist", "adaptivecards.js"));
const markdownIt = require("markdown-it");

const MAX_VERSION = "1.4";
const MAX_BYTES = 28000;
const CONTENT_TYPE = "application/vnd.microsoft.card.adaptive";
const FORBIDDEN_ACTIONS = ["Action.Submit", "Action.Execute"];

const md = markdownIt({ linkify: true });

// The actions a Teams webhook card may use: the library's defaults less the forbidden ones.
const actionRegistry = new AC.CardObjectRegistry();
AC.GlobalRegistry.populateWithDefaultActions(actionRegistry);
for (const name of FORBIDDEN_ACTIONS) actionRegistry.unregister(name);

function versionOf(text) {
  const v = AC.Version.parse(String(text), new AC.SerializationContext());
  return v && v.isValid ? v : undefined;
}

function libraryEvents(card, errors, warnings) {
  // Parse as a host that supports at most 1.4 would, so newer elements show up as unknown.
  const declared = versionOf(card.version);
  const max = versionOf(MAX_VERSION);
  const version = declared && declared.compareTo(max) <= 0 ? declared : max;
  const context = new AC.SerializationContext(version);
  context.setActionRegistry(actionRegistry);
  const parsed = new AC.AdaptiveCard();
  parsed.parse(card, context);
  const events = [];
  for (let i = 0; i < context.eventCount; i++) events.push(context.getEventAt(i));
  events.push(...parsed.validateProperties().validationEvents);
  for (const e of events) {
    const entry = `${AC.ValidationPhase[e.phase]}: ${AC.ValidationEvent[e.event]}: ${e.message}`;
    if (e.event === AC.ValidationEvent.Hint || e.event === AC.ValidationEvent.Deprecated) warnings.push(entry);
    else errors.push(entry);
  }
}

// Every string a host renders as markdown: TextBlock text and FactSet titles/values (nested cards too).
function markdownTexts(node, out) {
  if (Array.isArray(node)) {
    for (const item of node) markdownTexts(item, out);
  } else if (node && typeof node === "object") {
    if (node.type === "TextBlock" && typeof node.text === "string") out.push(node.text);
    if (node.type === "FactSet" && Array.isArray(node.facts)) {
      for (const f of node.facts) out.push(String(f.title), String(f.value));
    }
    for (const value of Object.values(node)) markdownTexts(value, out);
  }
  return out;
}

function actionTypes(node, out) {
  if (Array.isArray(node)) {
    for (const item of node) actionTypes(item, out);
  } else if (node && typeof node === "object") {
    if (typeof node.type === "string" && node.type.startsWith("Action.")) out.push(node.type);
    for (const value of Object.values(node)) actionTypes(value, out);
  }
  return out;
}

function check(message) {
  const errors = [];
  const warnings = [];
  const bytes = Buffer.byteLength(JSON.stringify(message), "utf8");
  if (bytes > MAX_BYTES) errors.push(`message is ${bytes} bytes, over Teams' ${MAX_BYTES}`);
  let card = message;
  if (message && message.type === "message") {
    const attachments = message.attachments;
    if (!Array.isArray(attachments) || attachments.length !== 1) {
      errors.push("envelope: attachments must hold exactly one card");
      card = undefined;
    } else {
      const a = attachments[0];
      if (a.contentType !== CONTENT_TYPE) errors.push(`envelope: contentType must be ${CONTENT_TYPE}`);
      if (!("contentUrl" in a) || a.contentUrl !== null) errors.push("envelope: contentUrl must be null");
      card = a.content;
    }
  } else {
    warnings.push("not a Workflows envelope (type must be \"message\"); validating as a bare card");
  }
  const result = { errors, warnings, bytes, links: [], emphasis: [], textFunctions: 0 };
  if (!card || card.type !== "AdaptiveCard") {
    errors.push("content must be an AdaptiveCard");
    return result;
  }
  const version = versionOf(card.version);
  if (!version) errors.push(`card version ${JSON.stringify(card.version)} is not a version`);
  else if (version.compareTo(versionOf(MAX_VERSION)) > 0) errors.push(`card version ${card.version} > ${MAX_VERSION}`);
  if (card.$schema !== "http://adaptivecards.io/schemas/adaptive-card.json") warnings.push("missing $schema");
  for (const type of actionTypes(card, [])) {
    if (FORBIDDEN_ACTIONS.includes(type)) errors.push(`${type} is not supported by Teams webhooks`);
  }
  libraryEvents(card, errors, warnings);
  for (const text of markdownTexts(card, [])) {
    const html = md.render(text);
    for (const m of html.matchAll(/<a href="([^"]*)"/g)) result.links.push(m[1]);
    for (const m of html.matchAll(/<(strong|em|s|del|code|h[1-6])>([\s\S]*?)<\/\1>/g)) result.emphasis.push(m[2]);
    if (/\{\{(DATE|TIME)\(/.test(text)) result.textFunctions += 1;
  }
  return result;
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  let parsed;
  try {
    parsed = JSON.parse(input);
  } catch (e) {
    process.stderr.write(`input is not JSON: ${e.message}\n`);
    process.exit(2);
  }
  const messages = Array.isArray(parsed) ? parsed : [parsed];
  process.stdout.write(JSON.stringify(messages.map(check)) + "\n");
});
