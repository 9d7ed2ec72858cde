import { Ajv2020 } from 'ajv/dist/2020.js';
import {
  environmentSchema,
  freezeSchema,
  pipelineSchema,
  quarantineSchema,
  serviceSchema,
  slipwaySchema,
} from '../../schemas/index.js';

const all = { slipwaySchema, environmentSchema, freezeSchema, serviceSchema, pipelineSchema, quarantineSchema };

describe('the file schemas', () => {
  it.each(Object.entries(all))('%s compiles under JSON Schema 2020-12 in strict mode', (_name, schema) => {
    const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, validateFormats: false });
    expect(() => ajv.compile(schema)).not.toThrow();
  });

  // The validator skips this check at run time (it is half of compiling a schema); this test is where it happens.
  it.each(Object.entries(all))('%s is a valid JSON Schema 2020-12 document', (_name, schema) => {
    const ajv = new Ajv2020({ strict: true, strictRequired: false, validateFormats: false });
    expect(ajv.validateSchema(schema)).toBe(true);
    expect(ajv.errors ?? null).toBeNull();
  });

  it('refuses a service whose digest is a tag', () => {
    const ajv = new Ajv2020({ allErrors: true, strictRequired: false, validateFormats: false });
    const validate = ajv.compile(serviceSchema);
    const ok = validate({
      apiVersion: 'slipway.dev/v1',
      kind: 'Service',
      metadata: { name: 'web' },
      spec: { image: { repository: 'localhost:5000/web', digest: 'latest' }, port: 8080 },
    });
    expect(ok).toBe(false);
    expect(validate.errors?.map((e) => e.instancePath)).toContain('/spec/image/digest');
  });
});
