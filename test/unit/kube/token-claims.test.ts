import { describe, expect, it } from 'vitest';
import { MAX_PAYLOAD_CHARS, decodeTokenClaims } from '../../../src/kube/token-claims';
import { boundClaims, legacyClaims, signJwt } from '../../helpers/jwt';

describe('decodeTokenClaims', () => {
  it('reads a bound token: jti, service account, namespace, pod, node, issued, expires', () => {
    const token = signJwt(boundClaims({ jti: 'b8f1c3d2-1111-4a4a-9c9c-0123456789ab', namespace: 'shop', serviceAccount: 'cart', pod: 'cart-7d9', podUid: '0b0c8c35-2e4e-4d5f-9a57-3b2f1f6a8e10', node: 'worker-3', iat: 1_790_000_000, exp: 1_790_003_607 }));
    const r = decodeTokenClaims(token + '\n');
    expect(r).toEqual({
      ok: true,
      token: {
        jti: 'b8f1c3d2-1111-4a4a-9c9c-0123456789ab',
        service_account: 'cart',
        namespace: 'shop',
        pod: 'cart-7d9',
        pod_uid: '0b0c8c35-2e4e-4d5f-9a57-3b2f1f6a8e10',
        node: 'worker-3',
        issued: new Date(1_790_000_000_000).toISOString(),
        expires: new Date(1_790_003_607_000).toISOString(),
        kind: 'bound',
      },
    });
    expect(JSON.stringify(r)).not.toContain(token.split('.')[2]!.slice(0, 20));
  });

  it('reads EKS (IRSA) and Azure workload identity tokens: Kubernetes claims, another audience', () => {
    for (const aud of [['sts.amazonaws.com'], ['api://AzureADTokenExchange']]) {
      const r = decodeTokenClaims(signJwt(boundClaims({ jti: 'j-1', aud })));
      expect(r.ok && r.token.kind === 'bound' && r.token.jti === 'j-1').toBe(true);
    }
  });

  it('reads a legacy secret-based token: no jti, no expiry, the Secret name', () => {
    const r = decodeTokenClaims(signJwt(legacyClaims('ci', 'builder', 'builder-token-x7k2p')));
    expect(r).toEqual({ ok: true, token: { jti: null, service_account: 'builder', namespace: 'ci', pod: null, pod_uid: null, node: null, issued: null, expires: null, kind: 'legacy', secret_name: 'builder-token-x7k2p' } });
  });

  it('keeps claims of the wrong type or size out', () => {
    const r = decodeTokenClaims(signJwt({ ...boundClaims(), jti: { $ne: 1 }, exp: 'tomorrow', 'kubernetes.io': { namespace: 'x'.repeat(1000), pod: { name: 7 } } }));
    expect(r.ok && r.token).toMatchObject({ jti: null, expires: null, namespace: null, pod: null });
  });

  it('refuses what is not a JWT, a payload over the cap, bad base64url and bad JSON, without throwing', () => {
    expect(decodeTokenClaims('not a token at all')).toEqual({ ok: false, reason: 'not-jwt' });
    expect(decodeTokenClaims('a.b.c.d')).toEqual({ ok: false, reason: 'not-jwt' });
    expect(decodeTokenClaims('')).toEqual({ ok: false, reason: 'not-jwt' });
    const huge = signJwt({ ...boundClaims(), pad: 'x'.repeat(1024 * 1024) });
    expect(huge.split('.')[1]!.length).toBeGreaterThan(MAX_PAYLOAD_CHARS);
    expect(decodeTokenClaims(huge)).toEqual({ ok: false, reason: 'too-large' });
    expect(decodeTokenClaims('eyJhbGciOiJSUzI1NiJ9.e30+/x.sig')).toEqual({ ok: false, reason: 'bad-base64' });
    expect(decodeTokenClaims(`eyJhbGciOiJSUzI1NiJ9.${Buffer.from('{"jti":').toString('base64url')}.sig`)).toEqual({ ok: false, reason: 'bad-json' });
    expect(decodeTokenClaims(`eyJhbGciOiJSUzI1NiJ9.${Buffer.from('[1,2]').toString('base64url')}.sig`)).toEqual({ ok: false, reason: 'bad-json' });
  });
});
