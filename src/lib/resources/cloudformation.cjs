// serverless.yml reads the tables and queues from here: `${file(./src/lib/resources/cloudformation.cjs)}`.
// It renders definitions.ts (the single definition, also used by bootstrap.ts), loaded
// through tsx so there is no generated copy to keep in step.
const { require: tsxRequire } = require('tsx/cjs/api');

module.exports = async ({ resolveVariable }) => {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');
  const { cloudFormationResources } = tsxRequire('./definitions.ts', __filename);
  return { Resources: cloudFormationResources(`${service}-${stage}`) };
};
