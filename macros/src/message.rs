//! `#[derive(Message)]`.

use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::{DeriveInput, LitInt, LitStr, Type};

use crate::{default_name, lit_str, reject_generics, set_once};

/// The options gathered from every `#[message(...)]` attribute.
#[derive(Default)]
struct Options {
    reply: Option<Type>,
    tag: Option<LitStr>,
    redeliver: Option<LitInt>,
}

/// Parses every `#[message(...)]` attribute of `input`.
fn options(input: &DeriveInput) -> syn::Result<Options> {
    let mut opts = Options::default();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("message")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("reply") {
                let ty: Type = meta.value()?.parse()?;
                set_once(&mut opts.reply, ty, &meta, "reply")
                        } else if meta.path.is_ident("tag") {
                let tag = lit_str(&meta, "tag")?;
                set_once(&mut opts.tag, tag, &meta, "tag")
            } else if meta.path.is_ident("redeliver") {
                let n: LitInt = meta.value()?.parse()?;
                n.base10_parse::<u32>().map_err(|_| {
                    syn::Error::new(n.span(), "`redeliver` takes a whole number of attempts (a u32)")
                })?;
                set_once(&mut opts.redeliver, n, &meta, "redeliver")
            } else {
                Err(meta.error(
                    "unknown `message` option: expected `reply = Type`, `tag = \"...\"` or `redeliver = N`",
                ))
            }
        })?;
    }
    Ok(opts)
}

/// Expands `#[derive(Message)]` on `input`.
pub(crate) fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    reject_generics(
        input,
        "a Message cannot be generic: its tag must name one concrete type; \
         derive Message on a non-generic type (e.g. a newtype around the instantiation)",
    )?;
    let opts = options(input)?;
    let ident = &input.ident;
    let reply = opts.reply.map_or_else(|| quote!(()), |ty| quote!(#ty));
    let tag = opts
        .tag
        .map_or_else(|| default_name(ident), |lit| quote!(#lit));
    let redeliver = opts.redeliver.map(|n| quote!(const REDELIVER: u32 = #n;));
    Ok(quote! {
        #[automatically_derived]
        impl ::procession::Message for #ident {
            type Reply = #reply;
            const TAG: &'static str = #tag;
            #redeliver
        }
    })
}
