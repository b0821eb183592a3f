// Interface strings in Chinese and English, and date formatting.
//
// The chosen language is stored in the `lang` cookie, which the server also
// reads, so API error messages arrive in the same language as the interface.

const zh = {
  'app.name': '党务',
  'app.tagline': '党组织协同办公平台',
  'lang.switch': 'English',
  'lang.switchLabel': '切换为英文界面',

  'nav.label': '主导航',
  'nav.skip': '跳到主要内容',
  'nav.meetings': '会议',
  'nav.approvals': '审批',
  'nav.notices': '通知',
  'nav.learning': '学习',
  'nav.org': '组织',
  'nav.accounts': '账号',
  'nav.audit': '审计',

  'header.todo': '待办',
  'header.todoLabel': '待办事项 {count} 项',
  'header.account': '账号菜单',
  'header.changePassword': '修改密码',
  'header.logout': '退出登录',
  'header.loggedOut': '已退出登录',

  'common.loading': '正在加载…',
  'common.save': '保存',
  'common.cancel': '取消',
  'common.close': '关闭',
  'common.confirm': '确定',
  'common.create': '新建',
  'common.search': '搜索',
  'common.none': '无',
  'common.empty': '暂无数据',
  'common.prev': '上一页',
  'common.next': '下一页',
  'common.pageInfo': '第 {from}–{to} 条，共 {total} 条',
  'common.pageEmpty': '共 0 条',
  'common.actions': '操作',
  'common.saved': '已保存',
  'common.required': '此项为必填项',
  'common.yes': '是',
  'common.no': '否',
  'common.retry': '重试',

  'error.network': '无法连接服务器，请检查网络后重试',
  'error.unexpected': '操作失败：{message}',
  'error.sessionExpired': '登录已过期，请重新登录',

  'login.title': '登录党务',
  'login.username': '用户名',
  'login.password': '密码',
  'login.submit': '登录',
  'login.submitting': '正在登录…',
  'login.hint': '请使用组织分配的账号登录',

  'password.title': '修改密码',
  'password.forcedTitle': '首次登录请修改密码',
  'password.forcedHint': '管理员为您设置了初始密码，请先设置只有您知道的新密码。',
  'password.old': '当前密码',
  'password.new': '新密码',
  'password.confirm': '确认新密码',
  'password.policy': '至少 8 个字符，包含字母、数字、符号中的两类',
  'password.mismatch': '两次输入的新密码不一致',
  'password.changed': '密码已修改',
  'password.submit': '修改密码',

  'soon.title': '{feature}即将上线',
  'soon.body': '该功能正在建设中，上线后将在这里显示。',
  'soon.meetings': '会议预约、三会一课记录和视频会议',
  'soon.approvals': '公文起草、审批流转和签发',
  'soon.notices': '通知下发、签收和回执',
  'soon.learning': '课程学习、学时统计和考试',

  'org.title': '组织',
  'org.treeLabel': '组织树',
  'org.filter': '筛选组织',
  'org.noOrgs': '您当前没有可查看的组织',
  'org.selectHint': '请在左侧选择一个组织',
  'org.newRoot': '新建顶级党委',
  'org.newChild': '新建下级组织',
  'org.rename': '重命名',
  'org.move': '移动',
  'org.dissolve': '撤销',
  'org.kind': '组织类型',
  'org.name': '组织名称',
  'org.sortOrder': '排序号',
  'org.parent': '上级组织',
  'org.newParent': '新的上级组织',
  'org.path': '所在位置',
  'org.memberCount': '直属党员',
  'org.childCount': '下级组织',
  'org.count': '{count} 人',
  'org.created': '已新建组织：{name}',
  'org.renamed': '已保存组织：{name}',
  'org.moved': '已将{name}移到{parent}之下',
  'org.dissolved': '已撤销组织：{name}',
  'org.dissolveConfirm': '确定撤销“{name}”吗？只能撤销没有下级组织和党员的组织，此操作无法恢复。',
  'org.noMoveTargets': '没有可以移入的上级组织',
  'org.noChildKinds': '该类型的组织下不能再设下级组织',
  'org.expand': '展开',
  'org.collapse': '收起',
  'org.showTree': '选择组织',
  'org.readOnly': '只读',
  'org.option': '{name}（{kind}）',

  'kind.committee': '党委',
  'kind.general_branch': '党总支',
  'kind.branch': '党支部',
  'kind.group': '党小组',
  'kind.leading_group': '党组',

  'roles.title': '班子成员',
  'roles.empty': '尚未配备班子成员',
  'roles.assign': '任命职务',
  'roles.remove': '免去',
  'roles.member': '党员',
  'roles.role': '职务',
  'roles.pickMember': '搜索本组织及下级组织的党员',
  'roles.noMatches': '没有找到匹配的党员',
  'roles.pickHint': '请选择一名党员',
  'roles.assigned': '已任命{name}为{role}',
  'roles.removed': '已免去{name}的{role}职务',
  'roles.removeConfirm': '确定免去{name}的{role}职务吗？',
  'roles.self': '不能为自己任免职务',

  'role.secretary': '书记',
  'role.deputy_secretary': '副书记',
  'role.organization_member': '组织委员',
  'role.propaganda_member': '宣传委员',
  'role.discipline_member': '纪检委员',
  'role.committee_member': '委员',

  'members.title': '党员',
  'members.search': '按姓名搜索',
  'members.subtree': '包含下级组织',
  'members.empty': '没有符合条件的党员',
  'members.name': '姓名',
  'members.gender': '性别',
  'members.org': '所在组织',
  'members.status': '类别',
  'members.joinedOn': '入党日期',
  'members.phone': '联系电话',

  'member.title': '党员信息',
  'member.ethnicity': '民族',
  'member.birthDate': '出生日期',
  'member.education': '学历',
  'member.idNumber': '身份证号码',
  'member.reveal': '查看完整号码',
  'member.revealing': '正在查询…',
  'member.hide': '隐藏',
  'member.revealed': '已显示完整身份证号码，此次查看已记入审计日志',
  'member.roles': '担任职务',
  'member.noRoles': '未担任职务',
  'member.roleAt': '{org}{role}',

  'gender.male': '男',
  'gender.female': '女',
  'status.full': '正式党员',
  'status.probationary': '预备党员',

  'accounts.title': '账号管理',
  'accounts.create': '新建账号',
  'accounts.filter': '筛选用户名或姓名',
  'accounts.statusFilter': '账号状态',
  'accounts.all': '全部',
  'accounts.active': '正常',
  'accounts.disabledState': '已停用',
  'accounts.username': '用户名',
  'accounts.displayName': '姓名',
  'accounts.systemRole': '系统角色',
  'accounts.member': '关联党员',
  'accounts.memberNone': '不关联党员',
  'accounts.memberPick': '搜索党员姓名',
  'accounts.clearance': '密级',
  'accounts.status': '状态',
  'accounts.initialPassword': '初始密码',
  'accounts.initialHint': '用户首次登录时须修改此密码',
  'accounts.disable': '停用',
  'accounts.enable': '启用',
  'accounts.resetPassword': '重置密码',
  'accounts.resetTitle': '重置“{name}”的密码',
  'accounts.newPassword': '新密码',
  'accounts.generate': '生成随机密码',
  'accounts.created': '已新建账号：{name}',
  'accounts.disabled': '已停用账号：{name}',
  'accounts.enabled': '已启用账号：{name}',
  'accounts.reset': '已重置{name}的密码，请将新密码当面告知本人',
  'accounts.clearanceSaved': '已将{name}的密级设为{level}',
  'accounts.disableConfirm': '确定停用“{name}”吗？该账号将立即退出登录。',
  'accounts.builtIn': '内置',
  'accounts.empty': '没有符合条件的账号',
  'accounts.memberLink': '党员 #{id}',

  'sysrole.system_admin': '系统管理员',
  'sysrole.security_admin': '安全保密管理员',
  'sysrole.security_auditor': '安全审计员',

  'clearance.public': '公开',
  'clearance.internal': '内部',
  'clearance.confidential': '秘密',
  'clearance.secret': '机密',

  'audit.title': '审计日志',
  'audit.verify': '校验审计链',
  'audit.verifying': '正在校验…',
  'audit.intact': '审计链完整：共 {count} 条记录，哈希链与签名均校验通过',
  'audit.broken': '审计链校验失败：{fault}',
  'audit.targetFilter': '对象类型',
  'audit.allTargets': '全部对象',
  'audit.seq': '序号',
  'audit.at': '时间',
  'audit.actor': '操作人',
  'audit.action': '操作',
  'audit.target': '对象',
  'audit.detail': '详情',
  'audit.addr': '来源地址',
  'audit.empty': '没有审计记录',

  'target.account': '账号',
  'target.org': '组织',
  'target.member': '党员',

  'action.auth.login': '登录',
  'action.auth.logout': '退出登录',
  'action.auth.password_change': '修改密码',
  'action.auth.token_create': '创建访问令牌',
  'action.account.create': '新建账号',
  'action.account.update': '修改账号',
  'action.account.reset_password': '重置密码',
  'action.account.clearance': '设置密级',
  'action.member.create': '新增党员',
  'action.member.update': '修改党员信息',
  'action.member.reveal_id_number': '查看身份证号码',
  'action.org.create': '新建组织',
  'action.org.update': '修改组织',
  'action.org.move': '移动组织',
  'action.org.dissolve': '撤销组织',
  'action.org.role.assign': '任命职务',
  'action.org.role.remove': '免去职务',
  'action.demo.seed': '生成演示数据',

  'notFound.title': '页面不存在',
  'notFound.back': '返回首页',
};

const en = {
  'app.name': 'Dangwu',
  'app.tagline': 'Collaboration for party organizations',
  'lang.switch': '中文',
  'lang.switchLabel': 'Switch to Chinese',

  'nav.label': 'Main navigation',
  'nav.skip': 'Skip to main content',
  'nav.meetings': 'Meetings',
  'nav.approvals': 'Approvals',
  'nav.notices': 'Notices',
  'nav.learning': 'Learning',
  'nav.org': 'Organization',
  'nav.accounts': 'Accounts',
  'nav.audit': 'Audit',

  'header.todo': 'To-do',
  'header.todoLabel': '{count} to-do items',
  'header.account': 'Account menu',
  'header.changePassword': 'Change password',
  'header.logout': 'Log out',
  'header.loggedOut': 'Logged out',

  'common.loading': 'Loading…',
  'common.save': 'Save',
  'common.cancel': 'Cancel',
  'common.close': 'Close',
  'common.confirm': 'OK',
  'common.create': 'Create',
  'common.search': 'Search',
  'common.none': 'None',
  'common.empty': 'Nothing here yet',
  'common.prev': 'Previous',
  'common.next': 'Next',
  'common.pageInfo': '{from}–{to} of {total}',
  'common.pageEmpty': '0 items',
  'common.actions': 'Actions',
  'common.saved': 'Saved',
  'common.required': 'This field is required',
  'common.yes': 'Yes',
  'common.no': 'No',
  'common.retry': 'Retry',

  'error.network': 'Cannot reach the server; check the network and try again',
  'error.unexpected': 'The action failed: {message}',
  'error.sessionExpired': 'Your session has ended; log in again',

  'login.title': 'Log in to Dangwu',
  'login.username': 'Username',
  'login.password': 'Password',
  'login.submit': 'Log in',
  'login.submitting': 'Logging in…',
  'login.hint': 'Use the account your organization gave you',

  'password.title': 'Change password',
  'password.forcedTitle': 'Change your password to continue',
  'password.forcedHint': 'An administrator set your initial password. Choose a new one that only you know.',
  'password.old': 'Current password',
  'password.new': 'New password',
  'password.confirm': 'Confirm new password',
  'password.policy': 'At least 8 characters from two of: letters, digits, symbols',
  'password.mismatch': 'The new passwords do not match',
  'password.changed': 'Password changed',
  'password.submit': 'Change password',

  'soon.title': '{feature} is coming soon',
  'soon.body': 'This feature is being built and will appear here.',
  'soon.meetings': 'Meeting scheduling, 三会一课 records and video meetings',
  'soon.approvals': 'Document drafting, approval routes and sign-off',
  'soon.notices': 'Notices with read receipts',
  'soon.learning': 'Courses, study hours and exams',

  'org.title': 'Organization',
  'org.treeLabel': 'Organization tree',
  'org.filter': 'Filter organizations',
  'org.noOrgs': 'There is no organization you can view',
  'org.selectHint': 'Select an organization on the left',
  'org.newRoot': 'New top-level committee',
  'org.newChild': 'New sub-organization',
  'org.rename': 'Rename',
  'org.move': 'Move',
  'org.dissolve': 'Dissolve',
  'org.kind': 'Type',
  'org.name': 'Name',
  'org.sortOrder': 'Sort order',
  'org.parent': 'Parent organization',
  'org.newParent': 'New parent organization',
  'org.path': 'Location',
  'org.memberCount': 'Direct members',
  'org.childCount': 'Sub-organizations',
  'org.count': '{count}',
  'org.created': 'Created organization {name}',
  'org.renamed': 'Saved organization {name}',
  'org.moved': 'Moved {name} under {parent}',
  'org.dissolved': 'Dissolved organization {name}',
  'org.dissolveConfirm': 'Dissolve “{name}”? Only an organization without sub-organizations and members can be dissolved. This cannot be undone.',
  'org.noMoveTargets': 'There is no organization to move it under',
  'org.noChildKinds': 'An organization of this type cannot have sub-organizations',
  'org.expand': 'Expand',
  'org.collapse': 'Collapse',
  'org.showTree': 'Choose organization',
  'org.readOnly': 'Read only',
  'org.option': '{name} ({kind})',

  'kind.committee': 'Committee',
  'kind.general_branch': 'General branch',
  'kind.branch': 'Branch',
  'kind.group': 'Party group',
  'kind.leading_group': 'Leading party group',

  'roles.title': 'Officers',
  'roles.empty': 'No officers assigned yet',
  'roles.assign': 'Assign role',
  'roles.remove': 'Remove',
  'roles.member': 'Member',
  'roles.role': 'Role',
  'roles.pickMember': 'Search members of this organization and below',
  'roles.noMatches': 'No matching members',
  'roles.pickHint': 'Select a member',
  'roles.assigned': '{name} is now {role}',
  'roles.removed': 'Removed {name} as {role}',
  'roles.removeConfirm': 'Remove {name} as {role}?',
  'roles.self': 'You cannot change your own role',

  'role.secretary': 'Secretary',
  'role.deputy_secretary': 'Deputy secretary',
  'role.organization_member': 'Organization officer',
  'role.propaganda_member': 'Propaganda officer',
  'role.discipline_member': 'Discipline officer',
  'role.committee_member': 'Committee member',

  'members.title': 'Members',
  'members.search': 'Search by name',
  'members.subtree': 'Include sub-organizations',
  'members.empty': 'No matching members',
  'members.name': 'Name',
  'members.gender': 'Gender',
  'members.org': 'Organization',
  'members.status': 'Status',
  'members.joinedOn': 'Joined',
  'members.phone': 'Phone',

  'member.title': 'Member details',
  'member.ethnicity': 'Ethnicity',
  'member.birthDate': 'Date of birth',
  'member.education': 'Education',
  'member.idNumber': 'Identity number',
  'member.reveal': 'Show full number',
  'member.revealing': 'Requesting…',
  'member.hide': 'Hide',
  'member.revealed': 'The full identity number is shown; this view was recorded in the audit trail',
  'member.roles': 'Roles',
  'member.noRoles': 'No roles',
  'member.roleAt': '{role}, {org}',

  'gender.male': 'Male',
  'gender.female': 'Female',
  'status.full': 'Full member',
  'status.probationary': 'Probationary',

  'accounts.title': 'Accounts',
  'accounts.create': 'New account',
  'accounts.filter': 'Filter by username or name',
  'accounts.statusFilter': 'Account status',
  'accounts.all': 'All',
  'accounts.active': 'Active',
  'accounts.disabledState': 'Disabled',
  'accounts.username': 'Username',
  'accounts.displayName': 'Name',
  'accounts.systemRole': 'System role',
  'accounts.member': 'Member',
  'accounts.memberNone': 'No linked member',
  'accounts.memberPick': 'Search member names',
  'accounts.clearance': 'Clearance',
  'accounts.status': 'Status',
  'accounts.initialPassword': 'Initial password',
  'accounts.initialHint': 'The user must change it at first login',
  'accounts.disable': 'Disable',
  'accounts.enable': 'Enable',
  'accounts.resetPassword': 'Reset password',
  'accounts.resetTitle': 'Reset the password of “{name}”',
  'accounts.newPassword': 'New password',
  'accounts.generate': 'Generate random password',
  'accounts.created': 'Created account {name}',
  'accounts.disabled': 'Disabled account {name}',
  'accounts.enabled': 'Enabled account {name}',
  'accounts.reset': 'Reset the password of {name}; hand the new password over in person',
  'accounts.clearanceSaved': 'Set the clearance of {name} to {level}',
  'accounts.disableConfirm': 'Disable “{name}”? The account is logged out at once.',
  'accounts.builtIn': 'Built-in',
  'accounts.empty': 'No matching accounts',
  'accounts.memberLink': 'Member #{id}',

  'sysrole.system_admin': 'System administrator',
  'sysrole.security_admin': 'Security administrator',
  'sysrole.security_auditor': 'Security auditor',

  'clearance.public': 'Public',
  'clearance.internal': 'Internal',
  'clearance.confidential': 'Confidential',
  'clearance.secret': 'Secret',

  'audit.title': 'Audit trail',
  'audit.verify': 'Verify audit chain',
  'audit.verifying': 'Verifying…',
  'audit.intact': 'The audit chain is intact: {count} entries, hash links and signature verified',
  'audit.broken': 'Audit chain verification failed: {fault}',
  'audit.targetFilter': 'Target type',
  'audit.allTargets': 'All targets',
  'audit.seq': 'No.',
  'audit.at': 'Time',
  'audit.actor': 'Actor',
  'audit.action': 'Action',
  'audit.target': 'Target',
  'audit.detail': 'Detail',
  'audit.addr': 'Client address',
  'audit.empty': 'No audit entries',

  'target.account': 'Account',
  'target.org': 'Organization',
  'target.member': 'Member',

  'action.auth.login': 'Log in',
  'action.auth.logout': 'Log out',
  'action.auth.password_change': 'Change password',
  'action.auth.token_create': 'Create API token',
  'action.account.create': 'Create account',
  'action.account.update': 'Update account',
  'action.account.reset_password': 'Reset password',
  'action.account.clearance': 'Set clearance',
  'action.member.create': 'Add member',
  'action.member.update': 'Update member',
  'action.member.reveal_id_number': 'Show identity number',
  'action.org.create': 'Create organization',
  'action.org.update': 'Update organization',
  'action.org.move': 'Move organization',
  'action.org.dissolve': 'Dissolve organization',
  'action.org.role.assign': 'Assign role',
  'action.org.role.remove': 'Remove role',
  'action.demo.seed': 'Seed demo data',

  'notFound.title': 'Page not found',
  'notFound.back': 'Back to the start page',
};

const dictionaries = { zh, en };

const LANG_COOKIE_DAYS = 365;

/** Returns the stored interface language: `en` if the cookie contains it, else `zh`. */
export function getLang() {
  const match = document.cookie.match(/(?:^|;\s*)lang=([^;]*)/);
  return match && match[1] === 'en' ? 'en' : 'zh';
}

/** Stores the interface language in the `lang` cookie the server also reads. */
export function setLang(lang) {
  const maxAge = LANG_COOKIE_DAYS * 24 * 3600;
  document.cookie = `lang=${lang}; Path=/; Max-Age=${maxAge}; SameSite=Strict`;
  applyDocumentLang();
}

/** Sets `<html lang>` for the current language. */
export function applyDocumentLang() {
  document.documentElement.lang = getLang() === 'en' ? 'en' : 'zh-CN';
}

/** Translates a key, replacing `{name}` placeholders from `vars`. */
export function t(key, vars = {}) {
  const dictionary = dictionaries[getLang()];
  const text = dictionary[key] ?? zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    name in vars ? String(vars[name]) : whole,
  );
}

/** Translates a key when the dictionary has it, else returns `fallback`. */
export function tOr(key, fallback) {
  const dictionary = dictionaries[getLang()];
  return dictionary[key] ?? zh[key] ?? fallback;
}

const EN_MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function toDateParts(value) {
  if (typeof value === 'string') {
    const match = value.match(/^(\d{4})-(\d{2})-(\d{2})$/);
    if (!match) return null;
    return { year: Number(match[1]), month: Number(match[2]), day: Number(match[3]) };
  }
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return null;
  return { year: date.getFullYear(), month: date.getMonth() + 1, day: date.getDate() };
}

/**
 * Formats a calendar date (`YYYY-MM-DD` string, or epoch milliseconds in
 * local time) as 2026年12月4日, or 4 Dec 2026 in English.
 */
export function formatDate(value) {
  if (value === null || value === undefined || value === '') return '';
  const parts = toDateParts(value);
  if (!parts) return String(value);
  if (getLang() === 'en') return `${parts.day} ${EN_MONTHS[parts.month - 1]} ${parts.year}`;
  return `${parts.year}年${parts.month}月${parts.day}日`;
}

/** Formats epoch milliseconds as a local date with a 24-hour time. */
export function formatDateTime(ms) {
  const date = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  return `${formatDate(ms)} ${time}`;
}
