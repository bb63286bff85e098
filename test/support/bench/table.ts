/** A benchmark's table as Markdown, its columns padded to line up in a terminal, after a blank line and its title. */
export function markdownTable(title: string, header: readonly string[], body: readonly (readonly string[])[]): string {
  const widths = header.map((_, column) => Math.max(...[header, ...body].map((cells) => cells[column]!.length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
  return [`\n${title}`, line(header), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...body.map(line)].join('\n');
}
