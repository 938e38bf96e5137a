/**
 * A strict little XML reader for the SVG files the project writes: enough to
 * prove a document well-formed (one root, every tag closed in order,
 * attributes quoted and unique, `<` and `&` only as markup or entities) and
 * to find elements in it. Comments, processing instructions and a DOCTYPE
 * are skipped; CDATA is refused (our writers never emit it).
 *
 * @module
 */

/** An element: its name, attributes and children. */
export interface XmlElement {
  name: string;
  attributes: Map<string, string>;
  children: (XmlElement | string)[];
}

const NAME = /^[A-Za-z_:][\w:.-]*/;
const ENTITY = /&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g;

function decode(text: string, where: string): string {
  if (/</.test(text)) throw new SyntaxError(`raw "<" in ${where}`);
  const stray = text.replace(ENTITY, "").indexOf("&");
  if (stray !== -1) throw new SyntaxError(`"&" without an entity in ${where}`);
  return text.replace(ENTITY, (entity) => {
    switch (entity) {
      case "&amp;":
        return "&";
      case "&lt;":
        return "<";
      case "&gt;":
        return ">";
      case "&quot;":
        return '"';
      case "&apos;":
        return "'";
    }
    const hex = entity.startsWith("&#x");
    return String.fromCodePoint(
      parseInt(entity.slice(hex ? 3 : 2, -1), hex ? 16 : 10),
    );
  });
}

/**
 * Parses a whole XML document.
 *
 * @param text The document.
 * @returns The root element.
 * @throws {SyntaxError} Naming the first thing that is not well-formed.
 */
export function parseXml(text: string): XmlElement {
  let at = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const fail = (message: string): never => {
    const line = text.slice(0, at).split("\n").length;
    throw new SyntaxError(`${message} (line ${line})`);
  };
  while (at < text.length) {
    const open = text.indexOf("<", at);
    const chunk = text.slice(at, open === -1 ? text.length : open);
    if (chunk.length > 0) {
      if (stack.length === 0) {
        if (chunk.trim() !== "") fail("text outside the root element");
      } else {
        stack.at(-1)!.children.push(decode(chunk, "text"));
      }
    }
    if (open === -1) break;
    at = open;
    if (text.startsWith("<!--", at)) {
      const end = text.indexOf("-->", at + 4);
      if (end === -1) fail("unclosed comment");
      at = end + 3;
      continue;
    }
    if (text.startsWith("<?", at)) {
      const end = text.indexOf("?>", at + 2);
      if (end === -1) fail("unclosed processing instruction");
      at = end + 2;
      continue;
    }
    if (text.startsWith("<![CDATA[", at)) fail("CDATA is not expected");
    if (text.startsWith("<!DOCTYPE", at)) {
      if (root !== undefined || stack.length > 0) fail("misplaced DOCTYPE");
      const end = text.indexOf(">", at);
      if (end === -1) fail("unclosed DOCTYPE");
      at = end + 1;
      continue;
    }
    const close = text.indexOf(">", at);
    if (close === -1) fail("unclosed tag");
    const tag = text.slice(at + 1, close);
    at = close + 1;
    if (tag.startsWith("/")) {
      const name = tag.slice(1).trim();
      const top = stack.pop();
      if (top === undefined || top.name !== name) {
        fail(`</${name}> closes ${top ? `<${top.name}>` : "nothing"}`);
      }
      continue;
    }
    const selfClosing = tag.endsWith("/");
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const name = NAME.exec(body)?.[0];
    if (name === undefined) fail(`bad tag <${tag}>`);
    const element: XmlElement = {
      name: name!,
      attributes: new Map(),
      children: [],
    };
    let rest = body.slice(name!.length);
    while (rest.trim() !== "") {
      const attribute = /^\s+([A-Za-z_:][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/
        .exec(rest);
      if (attribute === null) fail(`bad attribute in <${name}>: ${rest}`);
      const [whole, key, double, single] = attribute!;
      if (element.attributes.has(key!)) {
        fail(`attribute ${key} twice in <${name}>`);
      }
      element.attributes.set(
        key!,
        decode(double ?? single ?? "", `attribute ${key}`),
      );
      rest = rest.slice(whole.length);
    }
    if (stack.length === 0) {
      if (root !== undefined) fail("a second root element");
      root = element;
    } else {
      stack.at(-1)!.children.push(element);
    }
    if (!selfClosing) stack.push(element);
  }
  if (stack.length > 0) fail(`<${stack.at(-1)!.name}> is never closed`);
  if (root === undefined) fail("no root element");
  return root!;
}

/**
 * Every element below (and including) `element`, depth first.
 *
 * @param element Where to start.
 * @returns The elements.
 */
export function descendants(element: XmlElement): XmlElement[] {
  const out = [element];
  for (const child of element.children) {
    if (typeof child !== "string") out.push(...descendants(child));
  }
  return out;
}

/**
 * The text inside an element, its descendants' included.
 *
 * @param element The element.
 * @returns The text.
 */
export function textOf(element: XmlElement): string {
  return element.children.map((child) =>
    typeof child === "string" ? child : textOf(child)
  ).join("");
}
