//! A transaction's legs as the portfolio stores them: the JSON column
//! services/portfolio writes, `[[leg, kind, asset, wallet, to_wallet, qty,
//! amount, selections], ...]` (amount null while unknown; selections null or
//! the JSON text of the lots a disposal names). Parsed here so that a book of
//! a million transactions is read back without a Python object per leg.

use std::borrow::Cow;

use serde::Deserialize;

use super::LedgerError;

/// One stored leg; strings are borrowed from the text unless escaped.
#[derive(Debug, Deserialize, PartialEq)]
pub struct StoredLeg<'a>(
    pub u8,
    pub u8,
    #[serde(borrow)] pub Cow<'a, str>,
    #[serde(borrow)] pub Cow<'a, str>,
    #[serde(borrow)] pub Cow<'a, str>,
    #[serde(borrow)] pub Cow<'a, str>,
    #[serde(borrow)] pub Option<Cow<'a, str>>,
    #[serde(borrow)] pub Option<Cow<'a, str>>,
);

impl StoredLeg<'_> {
    pub fn names_lots(&self) -> bool {
        self.7.as_deref().is_some_and(|s| !s.is_empty())
    }
}

/// The legs of one transaction's stored text.
pub fn parse_stored(text: &str) -> Result<Vec<StoredLeg<'_>>, LedgerError> {
    serde_json::from_str(text)
        .map_err(|e| LedgerError::new(format!("stored legs {text:?} are not readable: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_portfolio_writes() {
        let text = r#"[[0,1,"BTC","main","","1.5","100.25",null],[1,2,"ETH","a b","","0.1",null,"[[\"tx_1\", \"0.5\"]]"]]"#;
        let legs = parse_stored(text).unwrap();
        assert_eq!(legs.len(), 2);
        assert_eq!(
            (
                legs[0].0,
                legs[0].1,
                &*legs[0].2,
                &*legs[0].5,
                legs[0].6.as_deref()
            ),
            (0, 1, "BTC", "1.5", Some("100.25"))
        );
        assert!(!legs[0].names_lots());
        assert_eq!(legs[1].6, None);
        assert_eq!(legs[1].7.as_deref(), Some(r#"[["tx_1", "0.5"]]"#));
        assert!(legs[1].names_lots());
        assert!(parse_stored("[]").unwrap().is_empty());
    }

    #[test]
    fn refuses_other_shapes() {
        for bad in [
            "",
            "{}",
            "[[0,1,\"BTC\"]]",
            "[[0,1,2,3,4,5,6,7]]",
            "[[0,300,\"a\",\"b\",\"\",\"1\",null,null]]",
        ] {
            assert!(parse_stored(bad).is_err(), "{bad}");
        }
    }
}
