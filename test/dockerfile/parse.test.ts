import { describe, expect, it } from 'vitest';
import { thrown } from './helpers.js';
import { parseDockerfile } from '../../src/dockerfile/parse.js';
import { expandWord, splitWords } from '../../src/dockerfile/words.js';

const parse = (s: string) => parseDockerfile(s).instructions;
const err = thrown;

describe('parseDockerfile: lines', () => {
  it('keeps keywords, arguments and line numbers; ignores comments and blank lines', () => {
    const ins = parse('# comment\n\nFROM $BASE\n  run echo hi\n\n# x\nENV A=1\n');
    expect(ins.map((i) => [i.keyword, i.line, i.args])).toEqual([
      ['FROM', 3, '$BASE'],
      ['RUN', 4, 'echo hi'],
      ['ENV', 7, 'A=1'],
    ]);
  });

  it('joins continuations, skipping comment and empty lines inside them', () => {
    const [run] = parse('RUN apt-get update && \\\n    # a comment\n\n    apt-get install -y x \\  \n    y\nENV B=2\n');
    expect(run?.args).toBe('apt-get update &&     apt-get install -y x     y');
    expect(run?.line).toBe(1);
    expect(run?.endLine).toBe(5);
  });

  it('honours # escape=` (backslashes are then ordinary characters)', () => {
    const df = parseDockerfile('# escape=`\nFROM $BASE\nRUN dir c:\\ `\n  && echo ok\n');
    expect(df.escape).toBe('`');
    expect(df.instructions[1]?.args).toBe('dir c:\\   && echo ok');
  });

  it('reads directives only at the top, case-insensitively, once each', () => {
    expect(parseDockerfile('# syntax=docker/dockerfile:1\n# ESCAPE = `\nFROM x\n').escape).toBe('`');
    expect(parseDockerfile('# syntax=docker/dockerfile:1\nFROM x\n').syntax).toBe('docker/dockerfile:1');
    // After a blank line, a comment or an instruction, "# escape=" is a comment.
    expect(parseDockerfile('\n# escape=`\nFROM x\n').escape).toBe('\\');
    expect(parseDockerfile('# hello\n# escape=`\nFROM x\n').escape).toBe('\\');
    expect(parseDockerfile('FROM x\n# escape=`\n').escape).toBe('\\');
    expect(err(() => parseDockerfile('# escape=`\n# escape=\\\nFROM x\n')).message).toBe(
      'Dockerfile:2: only one escape parser directive can be used',
    );
    expect(err(() => parseDockerfile('# escape=x\nFROM x\n')).code).toBe('ERR_CONFIG');
  });

  it('tolerates CRLF, a BOM and a continuation at the end of the file', () => {
    const ins = parse('\uFEFFFROM x\r\nRUN a \\\r\n  b\r\nRUN c \\');
    expect(ins.map((i) => i.args)).toEqual(['x', 'a   b', 'c']);
  });
});

describe('parseDockerfile: forms and flags', () => {
  it('recognises the JSON (exec) form and falls back to the shell form for invalid JSON', () => {
    const [a, b, c] = parse('CMD ["/bin/sh", "-c", "echo"]\nCMD [not json]\nENTRYPOINT ["a", 1]\n');
    expect(a?.json).toEqual(['/bin/sh', '-c', 'echo']);
    expect(b?.json).toBeUndefined();
    expect(c?.json).toBeUndefined();
  });

  it('splits leading flags, with and without values, quoted values included', () => {
    const [copy, run] = parse(
      'COPY --chmod=0755 --chown=1000:1000 --link a b /dst/\nRUN --mount=type=secret,id="a b" --network=none echo --not-a-flag\n',
    );
    expect(copy?.flags).toEqual([
      { name: 'chmod', value: '0755' },
      { name: 'chown', value: '1000:1000' },
      { name: 'link', value: undefined },
    ]);
    expect(copy?.args).toBe('a b /dst/');
    expect(run?.flags).toEqual([
      { name: 'mount', value: 'type=secret,id=a b' },
      { name: 'network', value: 'none' },
    ]);
    expect(run?.args).toBe('echo --not-a-flag');
  });
});

describe('parseDockerfile: heredocs', () => {
  it('reads a RUN heredoc body up to its delimiter', () => {
    const [run, env] = parse('RUN <<EOF\napt-get update\necho "$HOME"\nEOF\nENV A=1\n');
    expect(run?.heredocs).toEqual([{ name: 'EOF', content: 'apt-get update\necho "$HOME"\n', expand: true }]);
    expect(run?.endLine).toBe(4);
    expect(env?.line).toBe(5);
  });

  it('strips leading tabs with <<-, and quoted delimiters disable expansion', () => {
    const [a, b, c] = parse('RUN <<-END\n\tindented\n\tEND\nCOPY <<\'X\' /a\n$literal\nX\nRUN <<"Y" cat\nz\nY\n');
    expect(a?.heredocs[0]).toEqual({ name: 'END', content: 'indented\n', expand: true });
    expect(b?.heredocs[0]).toEqual({ name: 'X', content: '$literal\n', expand: false });
    expect(c?.heredocs[0]?.expand).toBe(false);
  });

  it('reads several heredocs in order, and COPY heredocs with a destination', () => {
    const [copy] = parse('COPY <<A <<B /dst/\na\nA\nb\nB\n');
    expect(copy?.heredocs.map((h) => [h.name, h.content])).toEqual([
      ['A', 'a\n'],
      ['B', 'b\n'],
    ]);
    expect(copy?.args).toBe('<<A <<B /dst/');
  });

  it('leaves << alone where heredocs do not apply (ENV, JSON form)', () => {
    const [env, run] = parse('ENV X=<<EOF\nRUN ["cat", "<<EOF"]\n');
    expect(env?.heredocs).toEqual([]);
    expect(run?.heredocs).toEqual([]);
  });

  it('refuses an unterminated heredoc, naming the instruction line', () => {
    const e = err(() => parse('FROM x\nRUN <<EOF\necho\n'));
    expect(e.message).toBe('Dockerfile:2: heredoc <<EOF is not terminated');
    expect(e.hint).toContain('EOF');
  });
});

describe('words: BuildKit substitution', () => {
  const v = new Map([
    ['A', 'alpha'],
    ['E', ''],
    ['P', 'dir/sub/file.tar.gz'],
  ]);
  const x = (w: string) => expandWord(w, v);
  it.each([
    ['$A', 'alpha'],
    ['${A}', 'alpha'],
    ['pre${A}post', 'prealphapost'],
    ['$A-x', 'alpha-x'],
    ['$UNSET', ''],
    ['${UNSET:-d}', 'd'],
    ['${E:-d}', 'd'],
    ['${E-d}', ''],
    ['${UNSET-d}', 'd'],
    ['${A:+set}', 'set'],
    ['${E:+set}', ''],
    ['${E+set}', 'set'],
    ['${UNSET+set}', ''],
    ['${UNSET:-$A}', 'alpha'],
    ['${UNSET:-${A}x}', 'alphax'],
    ['\\$A', '$A'],
    ["'$A'", '$A'],
    ['"$A"', 'alpha'],
    ['"\\$A"', '$A'],
    ['"a\\nb"', 'a\\nb'],
    ['"a b"c', 'a bc'],
    ['a\\ b', 'a b'],
    ['$', '$'],
    ['$1x', 'x'],
    ['${P#*/}', 'sub/file.tar.gz'],
    ['${P##*/}', 'file.tar.gz'],
    ['${P%.*}', 'dir/sub/file.tar'],
    ['${P%%.*}', 'dir/sub/file'],
    ['${P/sub/SUB}', 'dir/SUB/file.tar.gz'],
    ['${P//[.]/_}', 'dir/sub/file_tar_gz'],
  ])('%s → %s', (w, out) => {
    expect(x(w)).toBe(out);
  });

  it('fails ${X:?msg} for unset/empty and rejects unknown modifiers', () => {
    expect(() => x('${E:?must be set}')).toThrow('E: must be set');
    expect(x('${E?fine}')).toBe('');
    expect(() => x('${A!x}')).toThrow('unsupported modifier');
    expect(() => x('${A')).toThrow();
    expect(() => x("'open")).toThrow('single-quote');
  });

  it('honours a backtick escape character', () => {
    expect(expandWord('`$A', v, '`')).toBe('$A');
    expect(expandWord('c:\\dir', v, '`')).toBe('c:\\dir');
  });

  it('splits words at unquoted blanks only', () => {
    expect(splitWords('a "b c" d\\ e \'f g\'  h')).toEqual(['a', '"b c"', 'd\\ e', "'f g'", 'h']);
  });
});
