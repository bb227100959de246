"""Contract terms as code: one YAML file per contract, validated, with dated parameters."""

from carecontract.terms.loader import Terms, TermsError, dump_terms, load_terms
from carecontract.terms.model import Contract

__all__ = ["Contract", "Terms", "TermsError", "dump_terms", "load_terms"]
