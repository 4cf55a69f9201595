// Lint: typescript-eslint's strict, type-checked rules over src/ (the shipped code) and test/ (with its own
// tsconfig), plus a hard limit on function length. Formatting is prettier's job (`npm run format:check`);
// import cycles are checked by dpdm (`npm run cycles`). `npm run lint` runs all three; `npm test` runs it.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'build/**',
      'node_modules/**',
      'native/**',
      'fixtures/**',
      'bench/**',
      'scripts/**',
      'bin/**',
      '*.config.*',
      'eslint.config.js',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      'max-lines-per-function': ['error', { max: 120, skipBlankLines: false, skipComments: false }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      // `_`-prefixed names are deliberately unused: `{ omitted: _o, ...rest }`, `for await (const _ of s)` (drain).
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
    },
  },
  {
    // Plain JS helpers the tests spawn (test/exec/driver.mjs) are outside the TS projects: lint them untyped.
    files: ['**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      parserOptions: { project: false, projectService: false },
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        AbortController: 'readonly',
      },
    },
  },
  {
    files: ['test/**/*.ts'],
    // Tests assert on shapes they just built: `!` after a lookup and "unnecessary" guards are the point there.
    rules: {
      'max-lines-per-function': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unnecessary-condition': 'off',
      '@typescript-eslint/no-confusing-void-expression': 'off',
      '@typescript-eslint/require-await': 'off',
      // vitest's asymmetric matchers (expect.stringMatching, expect.any, …) are typed `any` by design; reading
      // parsed JSON stays checked by no-unsafe-member-access/-call/-return.
      '@typescript-eslint/no-unsafe-assignment': 'off',
    },
  },
);
