/**
 * The agent configs the docs show are ones the agent accepts, and the docs agree on the
 * paths and users of one installation (docs/operations.md, docs/ssh.md, the systemd unit).
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { agentConfigSchema } from '../../src/agent/config.ts';
import { formatIssues } from '../../src/lib/validation.ts';

async function jsonBlocks(doc: string): Promise<string[]> {
  const text = await readFile(doc, 'utf8');
  return [...text.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** Every complete agent config shown (a JSON object with drives), parsed by the agent's schema. */
async function documentedConfigs(doc: string) {
  const blocks = (await jsonBlocks(doc)).filter((b) => b.trimStart().startsWith('{') && b.includes('"drives"'));
  expect(blocks.length, `${doc} shows an agent config`).toBeGreaterThan(0);
  return blocks.map((b) => {
    const parsed = agentConfigSchema.safeParse(JSON.parse(b));
    if (!parsed.success) throw new Error(`${doc}: the documented agent config is rejected: ${formatIssues(parsed.error)}`);
    return parsed.data;
  });
}

describe('documented agent configuration', () => {
  it('every agent config in operations.md and ssh.md is accepted by the agent', async () => {
    await documentedConfigs('docs/operations.md');
    const [ssh] = await documentedConfigs('docs/ssh.md');
    expect(Object.keys(ssh!.sshHosts)).toEqual(['datahost']);
  });

  it('the SSH host fragment in operations.md is accepted and names the same user and files as ssh.md', async () => {
    const fragment = (await jsonBlocks('docs/operations.md')).find((b) => b.trimStart().startsWith('"sshHosts"'))!;
    const ops = agentConfigSchema.parse({ drives: [{ kind: 'st', device: '/dev/nst0' }], ...JSON.parse(`{${fragment}}`) }).sshHosts.datahost!;
    const [ssh] = await documentedConfigs('docs/ssh.md');
    const host = ssh!.sshHosts.datahost!;
    expect({ username: ops.username, privateKey: ops.privateKey, knownHosts: ops.knownHosts, address: ops.address }).toEqual({
      username: host.username,
      privateKey: host.privateKey,
      knownHosts: host.knownHosts,
      address: host.address,
    });
    // The files live in the config directory of the systemd unit.
    const unit = await readFile('deploy/systemd/tape-agent.service', 'utf8');
    expect(unit).toContain('TAPE_AGENT_CONFIG=/etc/tape-archive/agent.json');
    expect(host.privateKey.startsWith('/etc/tape-archive/')).toBe(true);
    for (const doc of ['docs/ssh.md', 'docs/operations.md']) expect(await readFile(doc, 'utf8')).not.toMatch(/\/etc\/tape-agent\//);
  });

  it('the example config shipped in deploy/ is accepted', async () => {
    const parsed = agentConfigSchema.safeParse(JSON.parse(await readFile('deploy/agent.example.json', 'utf8')));
    expect(parsed.success, parsed.success ? '' : formatIssues(parsed.error)).toBe(true);
  });

  it('an option the agent does not know is refused with its name', () => {
    const r = agentConfigSchema.safeParse({
      drives: [{ kind: 'st', device: '/dev/nst0' }],
      sshHosts: { h: { username: 'u', privateKey: 'k', knownHosts: 'n', ciphers: [] } },
    });
    expect(r.success).toBe(false);
    expect(formatIssues(r.error!)).toMatch(/ciphers/);
  });
});
