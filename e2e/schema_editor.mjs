// Validates YAML files against config/sites.schema.json with the YAML
// language server that editors use (yaml-language-server), as an editor
// does: reads a JSON array of {"name", "src"} on stdin, writes one JSON
// array of {"name", "errors"} (its errors and warnings) on stdout.
import { readFileSync } from 'node:fs';

const mod = await import('yaml-language-server');
const getLanguageService = mod.getLanguageService ?? mod.default.getLanguageService;
const { TextDocument } = await import('vscode-languageserver-textdocument');

const schema = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const files = JSON.parse(readFileSync(0, 'utf8'));
const ls = getLanguageService({
  schemaRequestService: async () => JSON.stringify(schema),
  workspaceContext: { resolveRelativePath: (rel, res) => new URL(rel, res).toString() },
});
ls.configure({
  validate: true, yamlVersion: '1.2',
  schemas: [{ uri: 'file:///koekje/sites.schema.json', fileMatch: ['*.yaml'], schema }],
});
const out = [];
for (const [i, f] of files.entries()) {
  // The association above stands for a file's own modeline.
  const src = f.src.replace(/^# yaml-language-server:.*\n/, '');
  const doc = TextDocument.create(`file:///koekje/f${i}.yaml`, 'yaml', 1, src);
  const diags = await ls.doValidation(doc, false);
  out.push({
    name: f.name,
    errors: diags.filter((d) => d.severity <= 2)
      .map((d) => `${d.range.start.line + 1}:${d.range.start.character + 1}: ${d.message}`),
  });
}
process.stdout.write(JSON.stringify(out));
