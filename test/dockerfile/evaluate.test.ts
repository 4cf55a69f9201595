import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { thrown } from './helpers.js';
import { evaluateDockerfile, type CopyStep, type RunStep } from '../../src/dockerfile/evaluate.js';
import { parseDockerfile } from '../../src/dockerfile/parse.js';
import { matchPreamble } from '../../src/dockerfile/preamble.js';

const BASE = 'registry.local/base:1';
const buildArgs = {
  BASE,
  OS_DISTRIBUTION: 'ubuntu',
  OS_VERSION: '22.04',
  HTTP_PROXY: 'http://user:pw@proxy:3128',
  HTTPS_PROXY: '',
  NO_PROXY: '',
  DRBD_VERSION: '9.2.13',
};
const baseConfig = { Env: ['PATH=/usr/bin:/bin', 'HOME=/root'], Cmd: ['/bin/bash'] };
const ev = (text: string, extra: Record<string, string> = {}) =>
  evaluateDockerfile(parseDockerfile(text), {
    buildArgs: { ...buildArgs, ...extra },
    baseConfig,
    skip: (i, a) => matchPreamble(i, a) !== undefined,
  });
const err = thrown;
const H = 'ARG BASE\nFROM $BASE\n';

describe('evaluateDockerfile: FROM and ARG', () => {
  it('accepts FROM $BASE / ${BASE} AS name and refuses another image or a second FROM', () => {
    expect(ev(H).steps).toEqual([]);
    expect(ev('ARG BASE\nFROM ${BASE} AS base\n').steps).toEqual([]);
    expect(err(() => ev('FROM ubuntu:22.04\n')).message).toBe(
      'Dockerfile:1: FROM must name the base image as $BASE (found "ubuntu:22.04")',
    );
    const e = err(() => ev(`${H}RUN true\nFROM $BASE\n`));
    expect(e.message).toMatch(/^Dockerfile:4: a second FROM \(multi-stage build\) is not supported/);
    expect(e.code).toBe('ERR_CONFIG');
    expect(err(() => ev('RUN true\n')).message).toBe('Dockerfile:1: RUN before FROM (only ARG may come first)');
    expect(err(() => ev('# nothing\n')).message).toMatch(/no FROM/);
  });

  it('gives ARGs the build argument, else the global value, else the default; ENV wins over ARG', () => {
    const r = ev(
      `ARG G=glob\n${H}ARG G\nARG OS_VERSION=20.04\nARG D=dflt\nARG DRBD_VERSION\nARG U\nENV D=fromenv\nLABEL g=$G v=$OS_VERSION d=$D u=\${U:-unset} drbd=$DRBD_VERSION\n`,
    );
    expect(r.config.Labels).toEqual({ g: 'glob', v: '22.04', d: 'fromenv', u: 'unset', drbd: '9.2.13' });
  });

  it('treats an empty build argument as set (CanvOS always passes all seven)', () => {
    expect(ev(`${H}ARG HTTPS_PROXY=default\nLABEL p=[$HTTPS_PROXY]\n`).config.Labels).toEqual({ p: '[]' });
  });

  it('does not let undeclared build arguments into substitutions', () => {
    expect(ev(`${H}LABEL v=[$OS_VERSION]\n`).config.Labels).toEqual({ v: '[]' });
  });
});

describe('evaluateDockerfile: config instructions', () => {
  it('applies ENV (both forms), LABEL, WORKDIR (relative to the previous), USER, SHELL, CMD, ENTRYPOINT, EXPOSE, VOLUME, STOPSIGNAL', () => {
    const r = ev(
      `${H}ENV A=1 B="two words"\nENV C legacy value\nENV PATH=/opt/bin:$PATH\nLABEL "org.x"="y z"\nWORKDIR /srv\nWORKDIR app\nUSER 1000:1000\nSHELL ["/bin/bash", "-o", "pipefail", "-c"]\nENTRYPOINT ["/init"]\nCMD echo hi\nEXPOSE 80 53/udp\nVOLUME ["/data"]\nVOLUME /logs /cache\nSTOPSIGNAL SIGTERM\n`,
    );
    expect(r.config).toEqual({
      Env: ['PATH=/opt/bin:/usr/bin:/bin', 'HOME=/root', 'A=1', 'B=two words', 'C=legacy value'],
      Labels: { 'org.x': 'y z' },
      WorkingDir: '/srv/app',
      User: '1000:1000',
      Shell: ['/bin/bash', '-o', 'pipefail', '-c'],
      Entrypoint: ['/init'],
      Cmd: ['/bin/bash', '-o', 'pipefail', '-c', 'echo hi'],
      ExposedPorts: { '80/tcp': {}, '53/udp': {} },
      Volumes: { '/data': {}, '/logs': {}, '/cache': {} },
      StopSignal: 'SIGTERM',
    });
    expect(r.steps.every((s) => s.kind === 'config')).toBe(true);
    expect(r.steps.map((s) => s.createdBy).slice(0, 2)).toEqual(['ENV A=1 B=two words', 'ENV C=legacy value']);
  });

  it('resets an inherited CMD when ENTRYPOINT is set; HEALTHCHECK and ONBUILD go into the config', () => {
    const r = ev(
      `${H}ENTRYPOINT /x\nHEALTHCHECK --interval=1m30s --retries=3 CMD curl -f http://localhost/\nONBUILD RUN echo\n`,
    );
    expect(r.config.Cmd).toBeNull();
    expect(r.config.Entrypoint).toEqual(['/bin/sh', '-c', '/x']);
    expect(r.config.Healthcheck).toEqual({
      Test: ['CMD-SHELL', 'curl -f http://localhost/'],
      Interval: 90e9,
      Retries: 3,
    });
    expect(r.config.OnBuild).toEqual(['RUN echo']);
  });

  it('refuses unknown instructions, MAINTAINER and malformed values with Dockerfile:LINE', () => {
    expect(err(() => ev(`${H}FOO bar\n`)).message).toBe('Dockerfile:3: unknown instruction FOO');
    expect(err(() => ev(`${H}MAINTAINER me\n`)).hint).toContain('LABEL maintainer');
    expect(err(() => ev(`${H}SHELL /bin/bash\n`)).message).toMatch(/^Dockerfile:3: SHELL needs the JSON form/);
    expect(err(() => ev(`${H}EXPOSE http\n`)).message).toMatch(/^Dockerfile:3: EXPOSE/);
    expect(err(() => ev(`${H}ENV A=\${B:?required}\n`)).message).toBe('Dockerfile:3: B: required');
    expect(err(() => ev(`${H}ENV --x=1 A=1\n`)).message).toBe('Dockerfile:3: ENV takes no flags (found --x)');
  });
});

describe('evaluateDockerfile: COPY, ADD and RUN steps', () => {
  it('expands COPY sources/destination relative to WORKDIR, with flags and heredocs', () => {
    const r = ev(
      `${H}ARG D=/opt\nWORKDIR /w\nCOPY --chmod=0755 --chown=app:app a*.sh "$D/bin/"\nCOPY x rel\nCOPY <<EOF <<'RAW' /etc/\nhello $D\nEOF\n$D\nRAW\nADD --checksum=sha256:${'a'.repeat(64)} https://example.com/f.tgz /tmp/\n`,
    );
    const [, c1, c2, c3, add] = r.steps as CopyStep[];
    expect(c1).toMatchObject({ sources: ['a*.sh'], dest: '/opt/bin/', chmod: 0o755, chown: 'app:app', add: false });
    expect(c1?.createdBy).toBe('COPY --chmod=0755 --chown=app:app a*.sh /opt/bin/ # buildkit');
    expect(c2).toMatchObject({ sources: ['x'], dest: '/w/rel' });
    expect(c3?.heredocs).toEqual(
      new Map([
        ['EOF', 'hello /opt\n'],
        ['RAW', '$D\n'],
      ]),
    );
    expect(add).toMatchObject({
      add: true,
      checksum: `sha256:${'a'.repeat(64)}`,
      sources: ['https://example.com/f.tgz'],
    });
  });

  it('refuses COPY --from, unknown flags and a malformed --chmod/--checksum', () => {
    expect(err(() => ev(`${H}COPY --from=builder /a /b\n`)).message).toMatch(/^Dockerfile:3: COPY --from/);
    expect(err(() => ev(`${H}COPY --parents a /b\n`)).message).toBe('Dockerfile:3: COPY --parents is not supported');
    expect(err(() => ev(`${H}COPY --chmod=u+x a /b\n`)).message).toMatch(/not an octal mode/);
    expect(err(() => ev(`${H}ADD --checksum=md5:00 a /b\n`)).message).toMatch(/sha256/);
    expect(err(() => ev(`${H}COPY a\n`)).message).toMatch(/source and a destination/);
  });

  it('builds RUN argv (shell, exec, heredoc), env with declared ARGs and proxies, history without proxy secrets', () => {
    const r = ev(
      `${H}ARG OS_DISTRIBUTION\nARG API_TOKEN=s3cr3t\nENV E=1\nWORKDIR /src\nUSER app\nRUN apt-get install -y x\nRUN ["echo", "a"]\nRUN <<EOF\nset -e\necho $E\nEOF\nRUN cat <<A > /f\nbody\nA\n`,
    );
    const [, , , run, exec, here, cat] = r.steps as RunStep[];
    expect(run?.argv).toEqual(['/bin/sh', '-c', 'apt-get install -y x']);
    expect(run?.workdir).toBe('/src');
    expect(run?.user).toBe('app');
    expect(run?.env).toEqual([
      'PATH=/usr/bin:/bin',
      'HOME=/root',
      'E=1',
      'OS_DISTRIBUTION=ubuntu',
      'API_TOKEN=s3cr3t',
      'HTTP_PROXY=http://user:pw@proxy:3128',
    ]);
    expect(run?.createdBy).toBe(
      'RUN |2 OS_DISTRIBUTION=ubuntu API_TOKEN=*** /bin/sh -c apt-get install -y x # buildkit',
    );
    expect(run?.createdBy).not.toContain('proxy');
    expect(exec?.argv).toEqual(['echo', 'a']);
    expect(here?.argv).toEqual(['/bin/sh', '-c', 'set -e\necho $E\n']);
    expect(cat?.argv).toEqual(['/bin/sh', '-c', 'cat <<A > /f\nbody\nA']);
  });

  it('keeps URL credentials out of history (config keeps what the user wrote)', () => {
    const r = ev(
      `${H}ARG HTTP_PROXY\nENV http_proxy=$HTTP_PROXY\nRUN curl -u x https://bob:s3cret@example.com/a?token=abc && echo done\n`,
    );
    const [env, run] = r.steps;
    expect(env?.createdBy).toBe('ENV http_proxy=http://proxy:3128');
    expect(r.config.Env).toContain('http_proxy=http://user:pw@proxy:3128');
    expect(run?.createdBy).toBe(
      'RUN /bin/sh -c curl -u x https://example.com/a?token=REDACTED && echo done # buildkit',
    );
  });

  it('accepts RUN --network=host and refuses mounts, --network=none and --security=insecure', () => {
    expect(ev(`${H}RUN --network=host true\n`).steps).toHaveLength(1);
    for (const f of ['--mount=type=cache,target=/var/cache/apt', '--network=none', '--security=insecure']) {
      const e = err(() => ev(`${H}RUN ${f} true\n`));
      expect(e.message).toMatch(/^Dockerfile:3: RUN --/);
      expect(e.code).toBe('ERR_CONFIG');
    }
  });
});

describe('stock preamble', () => {
  it('skips exact emulated lines (whitespace-insensitive) and applies edited ones', () => {
    const r = ev(`${H}RUN mkdir -p /certs\nCOPY   certs/  /certs/\nRUN rm -rf /certs\nRUN rm -rf /certs /tmp/extra\n`);
    expect(r.steps.map((s) => s.ins.line)).toEqual([6]);
  });

  // The digests in preamble.ts were taken from these files; CANVOS_REPO points at a spectrocloud/CanvOS checkout.
  const repo = process.env.CANVOS_REPO ?? '/work/.mirror/spectrocloud+CanvOS/repo';
  it.skipIf(!existsSync(repo))(
    'recognises every stock CanvOS Dockerfile since the certs/ directory (needs a CanvOS checkout)',
    () => {
      const git = (...a: string[]) => execFileSync('git', ['-C', repo, ...a], { encoding: 'utf8' });
      const commits = git('log', '--format=%h', '7f631d7^..HEAD', '--', 'Dockerfile').trim().split('\n');
      expect(commits.length).toBeGreaterThan(5);
      for (const c of commits) {
        const r = ev(git('show', `${c}:Dockerfile`));
        expect(r.steps, c).toEqual([]);
      }
    },
  );
});
