// Building the page: every value from the API goes in as text (a text node or a
// property), never as HTML, so a name like <img onerror=...> shows as those
// characters. No innerHTML anywhere in the console.

const SVG = 'http://www.w3.org/2000/svg';

function fill(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'class') node.setAttribute('class', value);
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name in node && !(node instanceof SVGElement)) node[name] = value;
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// h('tag', {attrs}, ...children): an HTML element
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

// s('tag', {attrs}, ...children): an SVG element
export function s(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG, tag), attrs, children);
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

export function fmtInt(n) {
  return Math.round(n || 0).toLocaleString('en-US');
}

export function fmtUsd(n) {
  const v = n || 0;
  if (v !== 0 && Math.abs(v) < 0.01) return '$' + v.toPrecision(2);
  return '$' + v.toLocaleString('en-US', {minimumFractionDigits: 2, maximumFractionDigits: 2});
}

// an axis label: short, whatever the magnitude
export function fmtShort(n, unit) {
  const v = n || 0;
  const a = Math.abs(v);
  let text;
  if (a === 0) text = '0';
  else if (a >= 1e9) text = (v / 1e9).toPrecision(3) + 'G';
  else if (a >= 1e6) text = (v / 1e6).toPrecision(3) + 'M';
  else if (a >= 1e4) text = (v / 1e3).toPrecision(3) + 'k';
  else if (a >= 0.01) text = String(Number(v.toPrecision(3)));
  else text = v.toExponential(1);
  return unit === '$' ? '$' + text : text + (unit ? ' ' + unit : '');
}

export function fmtMs(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return n < 10 ? n.toFixed(2) + ' ms' : fmtInt(n) + ' ms';
}

export function fmtTime(unixSeconds) {
  if (!unixSeconds) return '–';
  return new Date(unixSeconds * 1000).toISOString().replace('T', ' ').slice(0, 19) + 'Z';
}

export function fmtNs(ns) {
  return ns ? fmtTime(ns / 1e9) : '–';
}

// A table from rows of cells; `head` is a list of column titles.
export function table(head, rows, attrs) {
  return h('table', attrs || {},
    h('thead', {}, h('tr', {}, head.map((t) => h('th', {scope: 'col'}, t)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c))))));
}

// A pager over `total` items, `size` a page; `go(offset)` shows another page.
export function pager(offset, size, total, go) {
  const last = Math.max(0, Math.ceil(total / size) - 1) * size;
  const from = total ? offset + 1 : 0;
  const to = Math.min(total, offset + size);
  return h('div', {class: 'pager'},
    h('button', {type: 'button', disabled: offset <= 0, onclick: () => go(0)}, '« First'),
    h('button', {type: 'button', disabled: offset <= 0, onclick: () => go(Math.max(0, offset - size))}, '‹ Prev'),
    h('span', {class: 'pager-pos'}, `${fmtInt(from)}–${fmtInt(to)} of ${fmtInt(total)}`),
    h('button', {type: 'button', disabled: offset + size >= total, onclick: () => go(offset + size)}, 'Next ›'),
    h('button', {type: 'button', disabled: offset + size >= total, onclick: () => go(last)}, 'Last »'));
}

// A field with its label; `input` is an element.
export function field(label, input) {
  return h('label', {class: 'field'}, h('span', {}, label), input);
}

export function notice(text, kind) {
  return h('p', {class: 'notice ' + (kind || 'error'), role: kind === 'ok' ? 'status' : 'alert'}, text);
}

// A button that asks once more before it acts (no window.confirm: it blocks).
export function confirmButton(label, question, act, attrs) {
  const button = h('button', {type: 'button', class: 'danger', ...(attrs || {})}, label);
  let armed = false;
  button.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      button.textContent = question;
      button.classList.add('armed');
      setTimeout(() => {
        armed = false;
        button.textContent = label;
        button.classList.remove('armed');
      }, 4000);
      return;
    }
    armed = false;
    button.disabled = true;
    try {
      await act();
    } finally {
      button.disabled = false;
      button.textContent = label;
      button.classList.remove('armed');
    }
  });
  return button;
}
