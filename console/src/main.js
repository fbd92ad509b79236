// The AI Mass console: a sign-in form, then one page per hash route (#/usage, #/models, #/keys, #/batches,
// #/playground).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { call, forgetModels, session } from './api.js';
import { html } from './html.js';
import { Batches } from './pages/batches.js';
import { Keys } from './pages/keys.js';
import { Models } from './pages/models.js';
import { Playground } from './pages/playground.js';
import { Usage } from './pages/usage.js';
import { ErrorLine, useSubmit } from './widgets.js';

const PAGES = [
  { route: 'usage', title: 'Usage', Page: Usage },
  { route: 'models', title: 'Models', Page: Models },
  { route: 'keys', title: 'Keys', Page: Keys },
  { route: 'batches', title: 'Batches', Page: Batches },
  { route: 'playground', title: 'Playground', Page: Playground },
];

function currentRoute() {
  const route = window.location.hash.replace(/^#\/?/, '');
  return PAGES.some((page) => page.route === route) ? route : 'usage';
}

function SignIn({ onSignedIn }) {
  const [key, setKey] = useState('');
  const { busy, error, submit } = useSubmit(
    async () => {
      // A key the API accepts lists models; a wrong one is the API's 401, shown as it says it.
      await call('/v1/models', { key: key.trim() });
      session.signIn(key.trim());
      onSignedIn();
    },
    (failure) => `Sign-in failed: ${failure.message}`,
  );
  return html`<main class="signin">
    <h1>AI Mass console</h1>
    <form onSubmit=${submit}>
      <label for="api-key">API key</label>
      <input id="api-key" type="password" autocomplete="off" required value=${key}
        onInput=${(event) => setKey(event.currentTarget.value)} />
      <p class="hint">Kept in this tab only (session storage); sent to the API as a Bearer token.</p>
      <button type="submit" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
      <${ErrorLine} error=${error} />
    </form>
  </main>`;
}

function Shell({ onSignOut }) {
  const [route, setRoute] = useState(currentRoute());
  useEffect(() => {
    const follow = () => setRoute(currentRoute());
    window.addEventListener('hashchange', follow);
    return () => window.removeEventListener('hashchange', follow);
  }, []);
  const page = PAGES.find((each) => each.route === route);
  useEffect(() => {
    document.title = `${page.title} · AI Mass console`;
  }, [page]);
  // The skip link moves focus to the page's heading: a keyboard user passes the navigation in one key press.
  const skip = (event) => {
    event.preventDefault();
    document.getElementById('page-heading').focus();
  };
  return html`<div class="shell">
    <a class="skip" href="#page-heading" onClick=${skip}>Skip to the page</a>
    <header>
      <span class="brand">AI Mass</span>
      <nav aria-label="Console pages">
        ${PAGES.map(
          (each) => html`<a href=${`#/${each.route}`} aria-current=${each.route === route ? 'page' : undefined}>
            ${each.title}
          </a>`,
        )}
      </nav>
      <button type="button" class="secondary" onClick=${onSignOut}>Sign out</button>
    </header>
    <main>
      <h1 id="page-heading" tabindex="-1">${page.title}</h1>
      <${page.Page} key=${route} />
    </main>
  </div>`;
}

function App() {
  const [signedIn, setSignedIn] = useState(session.key() !== null);
  const signOut = () => {
    session.signOut();
    forgetModels();
    setSignedIn(false);
  };
  return signedIn ? html`<${Shell} onSignOut=${signOut} />` : html`<${SignIn} onSignedIn=${() => setSignedIn(true)} />`;
}

render(html`<${App} />`, document.getElementById('app'));
