// How queue entries look in `petrel queue ... --json` and `petrel spool ...
// --json`: one JSON object per message, the same in both.
#pragma once

#include <nlohmann/json.hpp>

#include "spool/spool.h"

namespace petrel::cli {

nlohmann::json EnvelopeJson(const spool::Envelope& e);
const char* RecipientStateName(spool::RecipientState s);

}  // namespace petrel::cli
