// A few DOM helpers: elements from a tag, properties and children, and finding required elements.

type Child = Node | string | number | null | undefined | false;

export interface Props {
  class?: string;
  text?: string;
  title?: string;
  hidden?: boolean;
  /** `data-*` attributes (for tests and styling). */
  data?: Record<string, string>;
  attrs?: Record<string, string>;
  onclick?: (event: Event) => void;
}

/** `h('li', { class: 'x' }, 'text', child)`. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (props.class !== undefined) element.className = props.class;
  if (props.text !== undefined) element.textContent = props.text;
  if (props.title !== undefined) element.title = props.title;
  if (props.hidden !== undefined) element.hidden = props.hidden;
  for (const [key, value] of Object.entries(props.data ?? {})) element.dataset[key] = value;
  for (const [key, value] of Object.entries(props.attrs ?? {})) element.setAttribute(key, value);
  if (props.onclick !== undefined) element.addEventListener('click', props.onclick);
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** The element with `id`, which the page's markup must have. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`the page has no #${id}`);
  return element as T;
}

/** A button that runs `action` and is disabled while it runs (no double submits). */
export function button(label: string, action: () => Promise<void> | void, className = 'secondary small', data: Record<string, string> = {}): HTMLButtonElement {
  const element = h('button', { class: className, text: label, data, attrs: { type: 'button' } });
  element.addEventListener('click', async () => {
    element.disabled = true;
    try {
      await action();
    } finally {
      element.disabled = false;
    }
  });
  return element;
}
