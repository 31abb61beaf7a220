//! The caller of an operation.

use postfach_auth::Principal;
use postfach_store::Scope;
use postfach_store::customers::Customer;
use postfach_store::mailboxes::Mailbox;
use postfach_types::{CustomerId, CustomerName, Role};

/// Who asks for an operation.
#[derive(Debug, Clone)]
pub enum Who {
    /// The operator at the command line: the whole platform, no account of its own.
    Operator,
    Admin {
        id: CustomerId,
        name: CustomerName,
    },
    Customer {
        id: CustomerId,
        name: CustomerName,
    },
    /// A mailbox user: sees and changes only their own mailbox.
    Mailbox {
        mailbox: Mailbox,
    },
}

impl Who {
    /// The store scope of everything this caller may reach.
    pub fn scope(&self) -> Scope {
        match self {
            Who::Operator | Who::Admin { .. } => Scope::Platform,
            Who::Customer { id, .. } => Scope::Customer(*id),
            Who::Mailbox { mailbox } => Scope::Customer(mailbox.customer_id),
        }
    }

    pub fn role(&self) -> &'static str {
        match self {
            Who::Operator => "operator",
            Who::Admin { .. } => "admin",
            Who::Customer { .. } => "customer",
            Who::Mailbox { .. } => "mailbox",
        }
    }

    pub fn display_name(&self) -> String {
        match self {
            Who::Operator => "operator".into(),
            Who::Admin { name, .. } | Who::Customer { name, .. } => name.to_string(),
            Who::Mailbox { mailbox } => mailbox.address.to_unicode(),
        }
    }

    /// The panel account (customer or admin) behind this caller; `None` for mailbox
    /// users and the operator.
    pub fn account_id(&self) -> Option<CustomerId> {
        match self {
            Who::Admin { id, .. } | Who::Customer { id, .. } => Some(*id),
            Who::Operator | Who::Mailbox { .. } => None,
        }
    }

    pub fn from_account(customer: Customer) -> Who {
        Who::account(customer.id, customer.name, customer.role)
    }

    /// A panel account (customer or admin) by its role.
    pub fn account(id: CustomerId, name: CustomerName, role: Role) -> Who {
        match role {
            Role::Admin => Who::Admin { id, name },
            Role::Customer => Who::Customer { id, name },
        }
    }

    /// This caller as the authentication gate names them (for changing their own
    /// password); the operator has no account.
    pub fn principal(&self) -> Option<Principal> {
        match self {
            Who::Operator => None,
            Who::Admin { id, name } => {
                Some(Principal::Account { customer_id: *id, name: name.clone(), role: Role::Admin })
            }
            Who::Customer { id, name } => {
                Some(Principal::Account { customer_id: *id, name: name.clone(), role: Role::Customer })
            }
            Who::Mailbox { mailbox } => {
                Some(Principal::mailbox(mailbox.id, mailbox.customer_id, mailbox.address.clone(), &mailbox.settings))
            }
        }
    }
}
