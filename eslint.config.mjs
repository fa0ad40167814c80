// ESLint (typescript-eslint's recommended rules) and the layering of the
// stages: each stage folder may import lib/ and only the stages listed, so
// that stages talk through the run directory (docs/where-things-are.md).
// Formatting is Prettier's (.prettierrc.json); `npm test` runs both.
import tseslint from 'typescript-eslint';

const STAGES = ['harness', 'probes', 'analysis', 'reports', 'cli'];

/** What each stage may import besides lib/ (cli/ composes them all). */
const ALLOWED = {
  lib: [],
  probes: [],
  harness: ['probes'],
  analysis: ['probes'],
  reports: ['analysis', 'probes'],
};

const layering = Object.entries(ALLOWED).map(([dir, allowed]) => ({
  files: [`${dir}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: STAGES.filter((s) => s !== dir && !allowed.includes(s)).map((s) => ({
          regex: `^(\\.\\./)+${s}/`,
          message: `${dir}/ may not import ${s}/: stages talk through the run directory and lib/ (allowed here: ${['lib', ...allowed].join(', ')}); cli/ composes them`,
        })),
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'native/build/**', 'bench/native/build/**', 'runs/**', 'fixtures/**/*.js'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Prettier wraps code at 160; what it cannot wrap (a long message, a regex) may run on, comments may not
      'max-len': ['error', { code: 160, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true }],
    },
  },
  // CommonJS entry points (probes/sampler-boot.cjs) require by nature
  { files: ['**/*.cjs'], rules: { '@typescript-eslint/no-require-imports': 'off' } },
  ...layering,
);
