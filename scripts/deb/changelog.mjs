// The Debian changelog (usr/share/doc/qrelay/changelog.gz) of this native
// package, made from CHANGELOG.md: one entry per released version
// ("## [1.2.3] - 2026-04-01" or "## 1.2.3"), its list items as the entry's
// lines. Without a section for the package's version, that version gets an
// entry of its own pointing at the upstream file.

/**
 * @param {{ name: string, version: string, maintainer: string, date: Date, markdown?: string }} input
 * @returns {string}
 */
export function debianChangelog({ name, version, maintainer, date, markdown }) {
  const sections = markdown === undefined ? [] : releases(markdown);
  if (!sections.some((s) => s.version === version)) {
    sections.unshift({ version, date: undefined, items: [markdown === undefined ? `Release ${version}.` : `Release ${version}; see CHANGELOG.md.`] });
  }
  return sections
    .map((s) => {
      const items = (s.items.length > 0 ? s.items : [`Release ${s.version}.`]).map((item) => bullet(item)).join('\n');
      return `${name} (${s.version}) unstable; urgency=medium\n\n${items}\n\n -- ${maintainer}  ${rfc2822(s.date ?? date)}\n`;
    })
    .join('\n');
}

/** Released versions of a Keep-a-Changelog style file, newest first as written. */
function releases(markdown) {
  const out = [];
  let current;
  let heading = '';
  for (const line of markdown.split('\n')) {
    const release = /^##\s+\[?v?(\d+\.\d+\.\d+[0-9A-Za-z.+~-]*)\]?(?:\s*[-–—]\s*(\d{4}-\d{2}-\d{2}))?/.exec(line);
    if (release !== null) {
      current = { version: release[1], date: release[2] && new Date(`${release[2]}T12:00:00Z`), items: [] };
      out.push(current);
      heading = '';
    } else if (/^##\s/.test(line)) {
      current = undefined; // "Unreleased" and the like
    } else if (current !== undefined) {
      const sub = /^###\s+(.*)/.exec(line);
      const item = /^[-*]\s+(.*)/.exec(line);
      const more = /^\s{2,}(\S.*)/.exec(line);
      if (sub !== null) heading = sub[1].trim();
      else if (item !== null) current.items.push(heading === '' ? item[1] : `${heading}: ${item[1]}`);
      else if (more !== null && current.items.length > 0) current.items[current.items.length - 1] += ` ${more[1]}`;
    }
  }
  return out;
}

/** "  * text" wrapped at 80 columns, continuation lines indented by four. */
function bullet(text) {
  const words = text.replace(/\s+/g, ' ').trim().split(' ');
  const lines = [];
  let line = '  *';
  for (const word of words) {
    if (line.trim() !== '*' && line.length + 1 + word.length > 79 && line.trim() !== '') {
      lines.push(line);
      line = `    ${word}`;
    } else line = `${line} ${word}`;
  }
  lines.push(line);
  return lines.join('\n');
}

function rfc2822(date) {
  // e.g. "Fri, 27 Nov 2026 11:14:12 +0000"
  return date.toUTCString().replace('GMT', '+0000');
}
