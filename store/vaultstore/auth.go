package vaultstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"

	"github.com/dpkeyring/dpkeyring/store"
)

// errNotRenewable reports a token that can no longer be renewed and has no credentials to log
// in again with.
var errNotRenewable = errors.New("vaultstore: token cannot be renewed")

// login authenticates the client with the configured method. It returns the secret to keep
// renewed, nil if there is nothing to renew (a token without TTL, such as a root token).
func (s *Store) login(ctx context.Context) (*api.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	switch s.cfg.Auth {
	case AuthToken:
		tok := s.cfg.Token
		if s.cfg.TokenFile != "" {
			b, err := os.ReadFile(s.cfg.TokenFile)
			if err != nil {
				return nil, fmt.Errorf("%w: vault token_file: %w", store.ErrPermission, err)
			}
			tok = strings.TrimSpace(string(b))
		}
		if tok == "" {
			return nil, fmt.Errorf("%w: vault: no token", store.ErrPermission)
		}
		s.client.SetToken(tok)
		sec, err := s.client.Auth().Token().LookupSelfWithContext(ctx)
		if err != nil {
			return nil, s.loginFail(err, "token (auth/token/lookup-self: the token is invalid or expired, or lacks the default policy)")
		}
		if sec == nil || sec.Data == nil {
			return nil, nil
		}
		ttl, _ := toUint(sec.Data["ttl"])
		renewable, _ := sec.Data["renewable"].(bool)
		if ttl == 0 || !renewable {
			return nil, nil
		}
		return &api.Secret{Auth: &api.SecretAuth{ClientToken: tok, Renewable: true, LeaseDuration: int(ttl)}}, nil
	case AuthAppRole:
		roleID := s.cfg.RoleID
		if s.cfg.RoleIDFile != "" {
			b, err := os.ReadFile(s.cfg.RoleIDFile)
			if err != nil {
				return nil, fmt.Errorf("%w: vault role_id_file: %w", store.ErrPermission, err)
			}
			roleID = strings.TrimSpace(string(b))
		}
		sid := &approle.SecretID{FromString: s.cfg.SecretID}
		if s.cfg.SecretIDFile != "" {
			sid = &approle.SecretID{FromFile: s.cfg.SecretIDFile}
		}
		m, err := approle.NewAppRoleAuth(roleID, sid, approle.WithMountPath(s.cfg.AppRoleMount))
		if err != nil {
			return nil, fmt.Errorf("%w: vault approle: %w", store.ErrPermission, err)
		}
		return s.loginWith(ctx, m, "approle (auth/"+s.cfg.AppRoleMount+"/login)")
	case AuthKubernetes:
		m, err := kubernetes.NewKubernetesAuth(s.cfg.KubernetesRole,
			kubernetes.WithServiceAccountTokenPath(s.cfg.KubernetesJWTFile),
			kubernetes.WithMountPath(s.cfg.KubernetesMount))
		if err != nil {
			return nil, fmt.Errorf("%w: vault kubernetes: %w", store.ErrPermission, err)
		}
		return s.loginWith(ctx, m, "kubernetes role "+s.cfg.KubernetesRole+" (auth/"+s.cfg.KubernetesMount+"/login)")
	}
	return nil, fmt.Errorf("%w: vault: auth=%q (use token, approle or kubernetes)", store.ErrInvalidSpec, s.cfg.Auth)
}

func (s *Store) loginWith(ctx context.Context, m api.AuthMethod, what string) (*api.Secret, error) {
	// Log in on a clone so that concurrent requests keep the old token until the new one is set.
	c, err := s.client.CloneWithHeaders()
	if err != nil {
		return nil, fmt.Errorf("vaultstore: %w", err)
	}
	c.ClearToken()
	sec, err := c.Auth().Login(ctx, m)
	if err != nil {
		return nil, s.loginFail(err, what)
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return nil, fmt.Errorf("%w: vault %s login returned no token", store.ErrPermission, what)
	}
	s.client.SetToken(sec.Auth.ClientToken)
	if !sec.Auth.Renewable || sec.Auth.LeaseDuration == 0 {
		return nil, nil
	}
	return sec, nil
}

// loginFail maps a failed login: a 400 or 403 from the auth method means rejected credentials.
func (s *Store) loginFail(err error, what string) error {
	var re *api.ResponseError
	if errors.As(err, &re) && (re.StatusCode == 400 || re.StatusCode == 403) {
		return fmt.Errorf("%w: vault at %s rejected the %s login (%s)", store.ErrPermission, s.cfg.Address, what, strings.Join(re.Errors, "; "))
	}
	if errors.As(err, &re) {
		return s.fail(err, "login", what)
	}
	if strings.Contains(err.Error(), "unable to read") || strings.Contains(err.Error(), "no such file") {
		return fmt.Errorf("%w: vault %s: %w", store.ErrPermission, what, err)
	}
	return fmt.Errorf("%w: vault at %s: %s login: %w", store.ErrUnavailable, s.cfg.Address, what, err)
}

// renewer keeps the login alive with the client's LifetimeWatcher and logs in again (AppRole,
// Kubernetes) when the token reaches its max TTL. Errors are kept for Store.Err, not logged.
type renewer struct {
	s    *Store
	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu   sync.Mutex
	last error
}

func (r *renewer) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func (r *renewer) setErr(err error) {
	r.mu.Lock()
	r.last = err
	r.mu.Unlock()
}

func (r *renewer) close() {
	r.once.Do(func() { close(r.stop) })
	<-r.done
}

func (r *renewer) run(sec *api.Secret) {
	defer close(r.done)
	backoff := time.Second
	for {
		wait := backoff // before retrying after an error
		if sec != nil {
			ended, err := r.watch(sec)
			if err != nil && strings.Contains(err.Error(), "max TTL") {
				err = nil // Vault's 500 "past the max TTL, cannot renew": the normal end of a lease
			}
			switch {
			case ended:
				return
			case err != nil:
				r.setErr(fmt.Errorf("%w: vault token renewal: %w", store.ErrUnavailable, err))
			case r.s.cfg.Auth == AuthToken:
				// The token reached its max TTL; without credentials there is no way on.
				r.setErr(fmt.Errorf("%w: vault token reached its max TTL: %w", store.ErrPermission, errNotRenewable))
				<-r.stop
				return
			default:
				wait = 0 // the lease ends normally: log in again right away
			}
		} else if r.err() == nil {
			// Nothing to renew.
			<-r.stop
			return
		}
		if wait > 0 {
			select {
			case <-r.stop:
				return
			case <-time.After(wait):
			}
		}
		// Log in again (AppRole, Kubernetes) or look the token up again (a failed renewal may
		// have been transient).
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-r.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		next, err := r.s.login(ctx)
		cancel()
		sec = next
		if err != nil {
			r.setErr(err)
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		if next == nil && r.s.cfg.Auth == AuthToken {
			r.setErr(fmt.Errorf("%w: vault token: %w", store.ErrPermission, errNotRenewable))
			backoff = 30 * time.Second
			continue
		}
		backoff = time.Second
		r.setErr(nil)
	}
}

// watch runs one LifetimeWatcher until it ends (ended=false, err=nil: the lease reached its
// max TTL; err: renewal failed) or the store closes (ended=true).
func (r *renewer) watch(sec *api.Secret) (ended bool, err error) {
	w, err := r.s.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{
		Secret:        sec,
		RenewBehavior: api.RenewBehaviorErrorOnErrors,
	})
	if err != nil {
		return false, err
	}
	go w.Start()
	defer w.Stop()
	for {
		select {
		case <-r.stop:
			return true, nil
		case err := <-w.DoneCh():
			return false, err
		case <-w.RenewCh():
			r.setErr(nil)
		}
	}
}
