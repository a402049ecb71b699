//! Derive macros for [`procession`](https://docs.rs/procession): `#[derive(Message)]` and
//! `#[derive(Actor)]`.
//!
//! Use them through `procession` (its prelude re-exports both), never directly: the
//! generated code names `::procession::...` paths.

mod actor;
mod message;
#[cfg(test)]
mod tests;

use proc_macro::TokenStream;
use proc_macro2::{Group, Ident, TokenStream as TokenStream2, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::{parse_macro_input, DeriveInput, LitStr};

/// Derives `procession::Message` for a concrete (non-generic) type.
///
/// Options, in one or several `#[message(...)]` attributes, each given at most once:
///
/// * `reply = Type` — the reply type of `ask` (default `()`);
/// * `tag = "..."` — the stable wire tag (default `concat!(module_path!(), "::TypeName")`).
///
/// ```ignore
/// #[derive(Serialize, Deserialize, Message)]
/// #[message(reply = u64, tag = "counter::Add")]
/// struct Add(u64);
/// ```
#[proc_macro_derive(Message, attributes(message))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    message::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Derives the dispatch table (and, unless `args` is given, `procession::Actor`) for a
/// concrete (non-generic) actor type, and registers it so a child process can find it by
/// name.
///
/// Options, in one or several `#[actor(...)]` attributes, each given at most once:
///
/// * `handles(A, B, path::C)` — required: every message type the actor handles (write
///   `handles()` for none); each needs a `Handler` impl;
/// * `args = Type` — the actor writes its own `Actor` impl, whose `Args` must be `Type`;
///   without it, `Actor` is derived with `Args = Self`;
/// * `name = "..."` — the stable actor name (default `concat!(module_path!(), "::TypeName")`).
///
/// ```ignore
/// #[derive(Serialize, Deserialize, Actor)]
/// #[actor(handles(Add, Get))]
/// struct Counter { total: u64 }
/// ```
#[proc_macro_derive(Actor, attributes(actor))]
pub fn derive_actor(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    actor::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Registers a function to run in every actor process before the actor's `create`:
/// `fn(&procession::ChildStart)`. Use it through `procession` (`#[procession::child_init]`).
///
/// ```ignore
/// #[procession::child_init]
/// fn logging(start: &procession::ChildStart) {
///     let _ = tracing_subscriber::fmt().try_init();
///     tracing::info!(actor = start.actor, incarnation = start.incarnation, "starting");
/// }
/// ```
#[proc_macro_attribute]
pub fn child_init(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = parse_macro_input!(item as syn::ItemFn);
    child_init_expand(attr.into(), item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

fn child_init_expand(attr: TokenStream2, item: syn::ItemFn) -> syn::Result<TokenStream2> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(
            attr,
            "#[child_init] takes no arguments",
        ));
    }
    let sig = &item.sig;
    if !sig.generics.params.is_empty() || sig.asyncness.is_some() || sig.inputs.len() != 1 {
        return Err(syn::Error::new_spanned(
            sig,
            "a #[child_init] function is `fn name(start: &procession::ChildStart)`: not generic, not async, one argument",
        ));
    }
    let ident = &sig.ident;
    let entry = Ident::new(
        &format!("__PROCESSION_CHILD_INIT_{ident}"),
        proc_macro2::Span::call_site(),
    );
    Ok(quote::quote! {
        #item

        #[::procession::__private::linkme::distributed_slice(::procession::__private::CHILD_INITS)]
        #[linkme(crate = ::procession::__private::linkme)]
        #[allow(non_upper_case_globals)]
        #[doc(hidden)]
        static #entry: fn(&::procession::ChildStart) = #ident;
    })
}

/// Fails with `message` (spanned on the generics) if `input` has any generic parameter or
/// `where` clause.
fn reject_generics(input: &DeriveInput, message: &str) -> syn::Result<()> {
    let generics = &input.generics;
    if !generics.params.is_empty() {
        return Err(syn::Error::new_spanned(generics, message));
    }
    if let Some(where_clause) = &generics.where_clause {
        return Err(syn::Error::new_spanned(where_clause, message));
    }
    Ok(())
}

/// Stores `value` in `slot`, or fails if the option `key` was already given.
fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    meta: &ParseNestedMeta,
    key: &str,
) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new_spanned(
            &meta.path,
            format!("duplicate `{key}` option: give it only once"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// Parses `= "literal"` after the option `key`, rejecting anything else and empty strings.
fn lit_str(meta: &ParseNestedMeta, key: &str) -> syn::Result<LitStr> {
    let hint = format!("expected a string literal: write `{key} = \"...\"`");
    let value = meta.value().map_err(|e| syn::Error::new(e.span(), &hint))?;
    let lit: LitStr = value
        .parse()
        .map_err(|e| syn::Error::new(e.span(), &hint))?;
    if lit.value().is_empty() {
        return Err(syn::Error::new_spanned(
            &lit,
            format!("`{key}` must not be empty"),
        ));
    }
    Ok(lit)
}

/// The default stable name of `ident`: `concat!(module_path!(), "::Ident")`.
fn default_name(ident: &Ident) -> TokenStream2 {
    use syn::ext::IdentExt;
    let suffix = format!("::{}", ident.unraw());
    quote::quote!(::core::concat!(::core::module_path!(), #suffix))
}

/// Replaces every `Self` in `tokens` by `ident` (keeping spans), so a type written inside
/// the attribute can be used outside an `impl` block.
fn replace_self(tokens: TokenStream2, ident: &Ident) -> TokenStream2 {
    tokens
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Ident(word) if word == "Self" => {
                let mut named = ident.clone();
                named.set_span(word.span());
                TokenTree::Ident(named)
            }
            TokenTree::Group(group) => {
                let mut inner = Group::new(group.delimiter(), replace_self(group.stream(), ident));
                inner.set_span(group.span());
                TokenTree::Group(inner)
            }
            other => other,
        })
        .collect()
}
