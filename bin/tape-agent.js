#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx, so there is no build step to forget.
import { register } from 'tsx/esm/api';

// The AWS SDK's notice that its releases after January 2027 need Node 22 would open every
// command; README.md says it once (supported Node versions).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

register();
await import('../src/agent/main-entry.ts');
