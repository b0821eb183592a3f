// The signed-in account and the permission hints the client derives from it.
//
// These hints only decide which controls to show. The server checks every
// request again, and its response is what counts.

import { api, setCsrfToken } from './api.js';

export const session = {
  account: null,
  /** The caller's own member record (with officer roles), if any. */
  member: null,
};

/** Stores a login or `/api/auth/me` response and loads the caller's member record. */
export async function startSession(info) {
  session.account = info.account;
  session.member = null;
  setCsrfToken(info.csrf_token);
  await refreshOwnMember();
}

/** Reloads the caller's member record, whose roles change on assignment. */
export async function refreshOwnMember() {
  const memberId = session.account && session.account.member_id;
  if (!memberId) {
    session.member = null;
    return;
  }
  try {
    session.member = await api.get(`/api/members/${memberId}`);
  } catch {
    session.member = null;
  }
}

export function endSession() {
  session.account = null;
  session.member = null;
  setCsrfToken(null);
}

export function hasSystemRole(role) {
  return Boolean(session.account && session.account.system_role === role);
}

/** Checks whether the caller is an officer of exactly this organization. */
function isOfficerOf(orgId) {
  return Boolean(session.member && session.member.roles.some((role) => role.org_id === orgId));
}

/**
 * Checks whether the caller may reveal the identity number of a member of
 * the given organization: its own officers and the security administrator.
 */
export function canRevealId(memberOrgId) {
  return hasSystemRole('security_admin') || isOfficerOf(memberOrgId);
}

/**
 * Checks whether the caller may assign officer roles in an organization.
 * The security administrator may do so anywhere and officers where they may
 * write, but never on their own record, which the role dialog checks.
 */
export function canAssignRoles(org) {
  if (hasSystemRole('security_admin')) return true;
  return Boolean(session.account && session.account.member_id && org.can_write);
}

/** Returns the navigation entries shown to this account, in order. */
export function navigationFor() {
  const role = session.account ? session.account.system_role : null;
  if (role === 'security_auditor') return ['audit'];
  if (role === 'system_admin') return ['meetings', 'approvals', 'notices', 'learning', 'membership', 'org', 'accounts'];
  if (role === 'security_admin') return ['org', 'accounts'];
  return ['meetings', 'approvals', 'notices', 'learning', 'membership', 'org'];
}

/** Returns the path an account opens after login. */
export function homePath() {
  const role = session.account ? session.account.system_role : null;
  if (role === 'security_auditor') return '/audit';
  return '/org';
}
