import { checkPipelineRequest } from '../../../controller/pipelines/index.js';

describe('a pipeline trigger body', () => {
  describe('when it is valid', () => {
    it('comes back as the request, every field kept', () => {
      const body = { repo: '/srv/hello', commit: 'v1.2.0', branch: 'release/1.2', registry: '127.0.0.1:5000/team/hello', tag: 'v1.2.0', noCache: true, envs: 'https://git.example/shop/envs.git', sign: true, keyless: false, actor: 'ci-bot' };
      expect(checkPipelineRequest(body)).toEqual({ ok: true, request: body });
    });

    it.each([
      ['an OCI layout dir', { repo: '/r', registry: '/var/lib/images' }],
      ['an oci: layout', { repo: '/r', registry: 'oci:/var/lib/images' }],
      ['a registry without a port', { repo: '/r', registry: 'registry.example.com/hello' }],
      ['a full commit sha', { repo: '/r', commit: 'a'.repeat(40) }],
      ['a relative revision', { repo: '/r', commit: 'HEAD~2' }],
    ])('accepts %s', (_name, body) => {
      expect(checkPipelineRequest(body).ok).toBe(true);
    });

    it('reads a file:// repo URL as the path it names', () => {
      expect(checkPipelineRequest({ repo: 'file:///srv/my%20service' })).toEqual({ ok: true, request: { repo: '/srv/my service' } });
    });
  });

  describe('when it is not', () => {
    it.each([
      ['no repo', {}, 'repo', 'MISSING_FIELD', 'field "repo" is required'],
      ['a misspelt field', { repo: '/r', regsitry: 'x' }, 'regsitry', 'UNKNOWN_FIELD', 'allowed: repo, commit, branch'],
      ['a repo that is a URL the builder cannot build from', { repo: 'git@github.com:shop/hello.git' }, 'repo', 'BAD_FIELD', 'clone a remote one first'],
      ['a branch with ..', { repo: '/r', branch: 'feature/..x' }, 'branch', 'BAD_FIELD', 'a git branch name'],
      ['a branch ending in .lock', { repo: '/r', branch: 'main.lock' }, 'branch', 'BAD_FIELD', 'a git branch name'],
      ['a tag with a slash', { repo: '/r', tag: 'v1/2' }, 'tag', 'BAD_FIELD', 'an OCI tag'],
      ['noCache as a string', { repo: '/r', noCache: 'true' }, 'noCache', 'BAD_FIELD', 'must be a boolean'],
      ['an empty actor', { repo: '/r', actor: '' }, 'actor', 'BAD_FIELD', 'who asked'],
      ['keyless signing with signing off', { repo: '/r', keyless: true, sign: false }, 'keyless', 'BAD_FIELD', 'drop one of them'],
      ['an array', [{ repo: '/r' }], '', 'BAD_FIELD', 'must be a JSON object'],
    ])('refuses %s, naming the field', (_name, body, field, code, words) => {
      const check = checkPipelineRequest(body);
      expect(check).toMatchObject({ ok: false, field, code });
      expect(!check.ok && check.message).toContain(words);
    });
  });
});
