import { CsrfField, Layout } from './layout.js';

export function AuthPage(props: { mode: 'login' | 'signup'; csrf: string; error?: string; email?: string; next?: string }) {
  const login = props.mode === 'login';
  return (
    <Layout title={login ? 'Log in' : 'Sign up'}>
      <h1>{login ? 'Log in' : 'Create an account'}</h1>
      {props.error ? <p class="error" id="error">{props.error}</p> : null}
      <form method="post" action={login ? '/login' : '/signup'} class="stack">
        <CsrfField token={props.csrf} />
        {props.next ? <input type="hidden" name="next" value={props.next} /> : null}
        <label>
          Email <input type="email" name="email" required value={props.email ?? ''} autocomplete="username" />
        </label>
        <label>
          Password <input type="password" name="password" required minlength={8} autocomplete={login ? 'current-password' : 'new-password'} />
        </label>
        <button type="submit">{login ? 'Log in' : 'Sign up'}</button>
      </form>
      <p>{login ? <a href="/signup">No account yet? Sign up</a> : <a href="/login">Have an account? Log in</a>}</p>
    </Layout>
  );
}
