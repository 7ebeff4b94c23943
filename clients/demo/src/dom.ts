// A small view layer: elements built from code, never from HTML strings. Everything a user
// typed goes into the page as text nodes (`textContent`), so hostile input is shown, not run.
// The server's CSP (`style-src 'self'`) also refuses inline styles: looks are classes in app.css.

export type Child = Node | string | number | null | undefined | false;

type Handler<K extends keyof HTMLElementEventMap> = (ev: HTMLElementEventMap[K]) => void;

export interface Props {
  class?: string;
  /** `data-testid`, the e2e tests' handle. */
  testid?: string;
  text?: string;
  /** Other attributes: strings are set, `true` sets an empty attribute, `false`/undefined skip. */
  attrs?: Record<string, string | number | boolean | undefined>;
  on?: { [K in keyof HTMLElementEventMap]?: Handler<K> };
}

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props.class) el.className = props.class;
  if (props.testid) el.dataset.testid = props.testid;
  for (const [name, value] of Object.entries(props.attrs ?? {})) {
    if (name === "style" || name.startsWith("on")) throw new Error(`no inline ${name}: use classes and listeners`);
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const [name, handler] of Object.entries(props.on ?? {})) {
    el.addEventListener(name, handler as EventListener);
  }
  if (props.text !== undefined) el.textContent = props.text;
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
  }
}

/** Replaces an element's children. */
export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, ...children);
}

export function show(el: HTMLElement, visible: boolean): void {
  el.hidden = !visible;
}

/** Hours and minutes of an RFC 3339 string or Unix milliseconds, in the viewer's locale. */
export function clock(ts: string | number): string {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return "";
  const today = new Date();
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return d.toDateString() === today.toDateString() ? time : `${d.toLocaleDateString()} ${time}`;
}

/** The text of a chat message or post's `data`: its `text` field, else the JSON (data is anyone's). */
export function textOf(data: unknown): string {
  if (typeof data === "string") return data;
  if (data && typeof data === "object" && typeof (data as { text?: unknown }).text === "string") {
    return (data as { text: string }).text;
  }
  try {
    return JSON.stringify(data) ?? "";
  } catch {
    return "";
  }
}

// `@name` where `@` does not follow a name character, as the server finds mentions
// (PROTOCOL.md, notification messages); trailing dots are not part of the name.
const MENTION = /(^|[^A-Za-z0-9_.-])@([A-Za-z0-9_.-]*[A-Za-z0-9_-])/g;

/** Text with `@mentions` wrapped in spans (`me` marks the viewer's own name), as text nodes only. */
export function withMentions(text: string, me: string | undefined): DocumentFragment {
  const out = document.createDocumentFragment();
  let at = 0;
  for (const m of text.matchAll(MENTION)) {
    const start = m.index + m[1]!.length;
    const name = m[2]!;
    out.append(text.slice(at, start));
    const isMe = me !== undefined && name.toLowerCase() === me.toLowerCase();
    out.append(h("span", { class: isMe ? "mention me" : "mention", text: `@${name}` }));
    at = start + 1 + name.length;
  }
  out.append(text.slice(at));
  return out;
}

/** A message for an error of any kind. */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

const SVG = "http://www.w3.org/2000/svg";
const ICONS = {
  // 24×24 outlines, drawn with the text colour (no icon font: the CSP allows only this origin).
  bell: "M6 16V11a6 6 0 0 1 12 0v5l2 2H4zM10 20a2 2 0 0 0 4 0",
  lock: "M7 11V8a5 5 0 0 1 10 0v3M5 11h14v10H5z",
  home: "M3 11l9-8 9 8M5 9v12h5v-6h4v6h5V9",
} as const;

/** A small line icon, as DOM (not markup). */
export function icon(name: keyof typeof ICONS, label?: string): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", `icon icon-${name}`);
  if (label) {
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
  } else svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  return svg;
}
