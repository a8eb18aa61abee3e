// A real OpenID provider on loopback for collab's login tests: oidc-provider 9.13.3 (pinned in
// tests/js/package.json), one confidential client, PKCE required, dev login/consent pages,
// RP-initiated logout, in-memory storage, ephemeral keys. Any login name and password sign in;
// the account's claims are derived from the login name (its preferred_username is the part
// before any "+", so "ann" and "ann+2" are two accounts that prefer one username).
//
// Environment: PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URIS and POST_LOGOUT_REDIRECT_URIS
// (comma-separated). Prints "ready <issuer>" once listening.
//
// Test hooks (loopback only, for negative cases a well-behaved provider never produces):
//   POST /__test/drop-id-token  -> later token responses carry no id_token.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

// The package lives in tests/js/node_modules (one pinned tree for every node test helper).
const requireFromJs = createRequire(new URL('../js/package.json', import.meta.url));
const { default: Provider } = await import(
  pathToFileURL(requireFromJs.resolve('oidc-provider')).href
);

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const list = (name) => (process.env[name] || '').split(',').filter(Boolean);

let dropIdToken = false;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.CLIENT_ID,
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: list('REDIRECT_URIS'),
      post_logout_redirect_uris: list('POST_LOGOUT_REDIRECT_URIS'),
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    revocation: { enabled: true },
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'picture', 'preferred_username'],
  },
  cookies: { keys: ['collab-test-cookie-key'] },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: `${id}@example.test`,
          email_verified: true,
          name: `User ${id}`,
          preferred_username: id.split('+')[0],
          picture: `https://example.test/${id}.png`,
        };
      },
    };
  },
});

provider.use(async (ctx, next) => {
  if (ctx.path === '/__test/drop-id-token' && ctx.method === 'POST') {
    dropIdToken = true;
    ctx.body = { drop_id_token: true };
    return;
  }
  await next();
  if (dropIdToken && ctx.path === '/token' && ctx.body && typeof ctx.body === 'object') {
    delete ctx.body.id_token;
  }
});

provider.on('server_error', (ctx, err) => console.error('server_error', err));

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
