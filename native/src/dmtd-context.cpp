// DMTD's schedule (../shared/dmtd/SPEC.md section 4) on top of llama_decode: which step each
// sequence's token takes, the refill block of a cycle head, and the cycles across calls.
//
// A cycle head refills the thinking layers of the positions decoded since the last head. Their
// cells already hold the decoding layers' K/V (written at their own steps), and llama.cpp writes a
// position's K/V into every layer of one cell at once; so the head step removes those positions
// and decodes them again, with the head, in one causal block: the thinking layers write their K/V
// for the first time, and the decoding layers compute only the head's row, the refill rows' K/V
// there copied from the cells they held (dmtd_copies_refill_kv; where that cannot be done, the
// decoding layers compute them again from the embedding, which gives the values of their own
// steps up to rounding: the reference test holds them to 1e-4). At batch 1 a block of tau rows
// reads the weights once, as one row does, so the refill costs no extra weight traffic.

#include "dmtd-graph.h"

#include "llama-context.h"
#include "flexidepth-graph.h"
#include "llama-kv-cache.h"
#include "llama-model.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_set>

namespace {

thread_local std::string dmtd_last_error_msg;
std::atomic<uint64_t> dmtd_next_id{1};

int32_t dmtd_fail(int32_t status, const std::string & message) {
    dmtd_last_error_msg = message;
    return status;
}

std::string dmtd_meta(const llama_model * model, const char * key) {
    char buf[128] = {0};
    return llama_model_meta_val_str(model, key, buf, sizeof(buf)) >= 0 ? std::string(buf) : std::string();
}

int32_t dmtd_check(const llama_model * model, const llama_dmtd_params & p) {
    const int32_t n_layer = llama_model_n_layer(model);
    const std::string arch = dmtd_meta(model, "general.architecture");
    if (arch != "llama" && arch != "qwen3") {
        return dmtd_fail(LLAMA_DMTD_ERR_INVALID_ARG, "DMTD supports llama and qwen3 models; this one is '" + arch + "'");
    }
    if (p.n_thinking < 1 || p.n_thinking >= n_layer) {
        return dmtd_fail(LLAMA_DMTD_ERR_INVALID_ARG, "thinking layers must be 1 to " + std::to_string(n_layer - 1) + " of "
                    + std::to_string(n_layer) + ", was " + std::to_string(p.n_thinking));
    }
    if (p.cycle < 1) {
        return dmtd_fail(LLAMA_DMTD_ERR_INVALID_ARG, "the cycle must be >= 1, was " + std::to_string(p.cycle));
    }
    if (p.phase != LLAMA_DMTD_PHASE_PROMPT_END && p.phase != LLAMA_DMTD_PHASE_ABSOLUTE) {
        return dmtd_fail(LLAMA_DMTD_ERR_INVALID_ARG, "unknown phase " + std::to_string((int) p.phase));
    }
    return LLAMA_DMTD_OK;
}

// The pending tokens of a sequence whose next position is p: the cache may have been trimmed
// (seq_rm) or rewritten since, and only the tokens of positions p-k .. p-1 are still pending.
void dmtd_reconcile(llama_dmtd_binding::seq_state & st, llama_pos p) {
    while (!st.pending.empty() && st.pending.back().first >= p) {
        st.pending.pop_back();
    }
    if (!st.pending.empty() && st.pending.back().first != p - 1) {
        st.pending.clear();
        st.next_is_head = true;
    }
}

struct dmtd_step_guard {
    llama_dmtd_binding & b;
    ~dmtd_step_guard() {
        b.current = llama_dmtd_binding::step::none;
        b.roles.clear();
        b.refill_cells.clear();
    }
};

int32_t dmtd_decode_as(llama_context * ctx, llama_dmtd_binding & b, llama_dmtd_binding::step kind, const llama_batch & batch) {
    dmtd_step_guard guard{b};
    b.current = kind;
    const int32_t rc = llama_decode(ctx, batch);
    return rc;
}

} // namespace

bool llama_dmtd_model_params(const struct llama_model * model, struct llama_dmtd_params * out) {
    if (model == nullptr || out == nullptr) {
        return false;
    }
    out->n_thinking = llama_model_n_layer(model);
    out->cycle = 1;
    out->phase = LLAMA_DMTD_PHASE_PROMPT_END;
    out->refill = true;
    const std::string thinking = dmtd_meta(model, "dmtd.thinking_layers");
    if (thinking.empty()) {
        return false;
    }
    out->n_thinking = atoi(thinking.c_str());
    const std::string cycle = dmtd_meta(model, "dmtd.cycle");
    out->cycle = cycle.empty() ? 1 : atoi(cycle.c_str());
    out->phase = dmtd_meta(model, "dmtd.phase") == "absolute" ? LLAMA_DMTD_PHASE_ABSOLUTE : LLAMA_DMTD_PHASE_PROMPT_END;
    out->refill = dmtd_meta(model, "dmtd.refill") != "false";
    return true;
}

int32_t llama_set_dmtd(struct llama_context * ctx, const struct llama_dmtd_params * params) {
    dmtd_last_error_msg.clear();
    if (ctx == nullptr) {
        return dmtd_fail(LLAMA_DMTD_ERR_INVALID_ARG, "context must not be NULL");
    }
    if (params == nullptr) {
        ctx->synchronize();
        ctx->dmtd.reset();
        return LLAMA_DMTD_OK;
    }
    if (int32_t rc = dmtd_check(&ctx->get_model(), *params); rc != LLAMA_DMTD_OK) {
        return rc;
    }
    if (ctx->flexidepth) {
        // routing records index the routed layers a graph computed, and a decoding-only step
        // computes only some of them
        return dmtd_fail(LLAMA_DMTD_ERR_INVALID_ARG, "the context computes with a FlexiDepth plug-in; DMTD and plug-ins do not combine yet");
    }
    ctx->synchronize();
    if (!ctx->dmtd) {
        try {
            // the parameters first: the compute buffers are reserved for the graphs they give
            auto binding = std::make_unique<llama_dmtd_binding>();
            binding->params = *params;
            binding->n_layer = (uint32_t) llama_model_n_layer(&ctx->get_model());
            ctx->set_dmtd(std::move(binding));
        } catch (const std::exception & e) {
            return dmtd_fail(LLAMA_DMTD_ERR_INVALID_ARG, std::string("cannot reserve compute buffers: ") + e.what());
        }
    }
    ctx->dmtd->params = *params;
    ctx->dmtd->id = dmtd_next_id++; // another split builds other graphs
    return LLAMA_DMTD_OK;
}

void llama_context::set_dmtd(std::unique_ptr<llama_dmtd_binding> binding) {
    synchronize();
    std::swap(dmtd, binding); // binding: the previous one, freed on return
    // the graph budget changes: graphs are sized (and compute buffers reserved) again now, as
    // training builds its graphs without passing through decode's lazy reserve; for a full step,
    // DMTD's largest graph (a plain prompt's has none of its nodes)
    sched_need_reserve = true;
    const auto step = dmtd ? dmtd->current : llama_dmtd_binding::step::none;
    if (dmtd) {
        dmtd->current = llama_dmtd_binding::step::full;
    }
    try {
        sched_reserve();
    } catch (...) {
        dmtd->current = step;
        std::swap(dmtd, binding);
        sched_need_reserve = true;
        throw;
    }
    if (dmtd) {
        dmtd->current = step;
    }
}

int32_t llama_context::decode_unabortable(const llama_batch & batch) {
    const ggml_abort_callback callback = abort_callback;
    void * data = abort_callback_data;
    set_abort_callback(nullptr, nullptr);
    const int32_t rc = decode(batch);
    set_abort_callback(callback, data);
    return rc;
}

namespace {

bool dmtd_batch_usable(const llama_batch & batch) {
    return batch.n_tokens > 0 && batch.token != nullptr && batch.pos != nullptr && batch.seq_id != nullptr && batch.n_seq_id != nullptr;
}

// Where the last piece of a block of n rows starts: it holds the block's last n_batch rows.
int32_t dmtd_last_piece_start(const llama_context * ctx, int32_t n) {
    return std::max(0, n - (int32_t) llama_n_batch(ctx));
}

// llama_decode of a causal block larger than the context's batch (a head's refill rows with the
// batch's own, or a prompt's), in pieces that each attend to the ones before through the cache;
// the first piece takes the remainder, so that the last holds the block's last rows, whose logits
// are wanted. Returns the first failure's value (the pieces before it stay in the cache).
int32_t dmtd_decode_in_pieces(llama_context * ctx, const llama_batch & block, bool unabortable) {
    const int32_t n = block.n_tokens;
    const int32_t first = dmtd_last_piece_start(ctx, n) % (int32_t) llama_n_batch(ctx);
    for (int32_t at = 0; at < n;) {
        const int32_t m = at == 0 && first > 0 ? first : std::min(n - at, (int32_t) llama_n_batch(ctx));
        llama_batch piece = block;
        piece.n_tokens = m;
        piece.token += at;
        piece.pos += at;
        piece.n_seq_id += at;
        piece.seq_id += at;
        piece.logits += at;
        const int32_t rc = unabortable ? ctx->decode_unabortable(piece) : llama_decode(ctx, piece);
        if (rc != 0) {
            return rc;
        }
        at += m;
    }
    return 0;
}

// Whether the head step's decoding layers leave the refill rows out and copy their K/V from the
// cells they held (recorded in b.refill_cells; the cells keep their data when seq_rm frees them).
// Only where the block is one ubatch (a later ubatch could overwrite a cell an earlier one was yet
// to read) and the cache is one plain stream: otherwise the refill rows' decoding layers are
// computed again, from the embedding, which gives the same values up to rounding.
bool dmtd_copies_refill_kv(llama_context * ctx, llama_dmtd_binding & b, const std::vector<llama_seq_id> & refilled, int32_t n_block) {
    b.refill_cells.clear();
    const auto * kv = dynamic_cast<const llama_kv_cache *>(ctx->get_memory());
    if (!b.params.refill || kv == nullptr || kv->get_n_stream() != 1
        || n_block > (int32_t) std::min(ctx->n_ubatch(), ctx->n_batch())) {
        return false;
    }
    for (const llama_seq_id s : refilled) {
        const auto & pending = b.seqs[s].pending;
        if (pending.empty()) {
            continue;
        }
        std::unordered_set<llama_pos> wanted;
        for (const auto & p : pending) {
            wanted.insert(p.first);
        }
        const llama_kv_cells & cells = kv->get_cells(s);
        size_t found = 0;
        for (uint32_t i = 0; i < cells.size(); ++i) {
            if (!cells.is_empty(i) && cells.seq_has(i, s) && wanted.count(cells.pos_get(i))) {
                b.refill_cells[llama_dmtd_binding::key(s, cells.pos_get(i))] = (int32_t) i;
                ++found;
            }
        }
        if (found != wanted.size()) {
            b.refill_cells.clear();
            return false;
        }
    }
    return !b.refill_cells.empty();
}

// A full-depth step over the batch (head: per row, whether it is a cycle head; empty: the batch is
// a prompt), preceded by the refill rows of the sequences that need them (the head rows' sequences,
// or every sequence of a prompt): the positions each decoded since its last full step, removed and
// decoded again in one causal block with their decoding layers fed the embedding, as at their own
// steps. On failure the removed positions are put back as they were.
int32_t dmtd_full_step(llama_context * ctx, llama_dmtd_binding & b, const llama_batch & batch, const std::vector<uint8_t> & head) {
    const int32_t n = batch.n_tokens;
    const bool prompt = head.empty();
    llama_memory_t mem = llama_get_memory(ctx);
    std::vector<llama_seq_id> refilled;
    int32_t n_refill = 0, n_seq_max = 1;
    for (int32_t i = 0; i < n; ++i) {
        n_seq_max = std::max(n_seq_max, batch.n_seq_id[i]);
        for (int32_t j = 0; j < batch.n_seq_id[i] && (prompt || head[i]); ++j) {
            const llama_seq_id s = batch.seq_id[i][j];
            if (std::find(refilled.begin(), refilled.end(), s) == refilled.end()) {
                refilled.push_back(s);
                n_refill += b.params.refill ? (int32_t) b.seqs[s].pending.size() : 0;
            }
        }
    }
    // upstream's graph for a prompt with nothing (left) to refill; llama_context::decode marks the
    // cycles to start
    auto plain_prompt = [&]() {
        const int32_t rc = llama_decode(ctx, batch);
        if (rc != 0) {
            return dmtd_fail(rc, "llama_decode returned " + std::to_string(rc));
        }
        for (int32_t i = 0; i < n; ++i) {
            b.out_index[i] = i;
            b.full[i] = 1;
        }
        return (int32_t) LLAMA_DMTD_OK;
    };
    if (prompt && n_refill == 0) {
        return plain_prompt();
    }

    llama_batch block = llama_batch_init(n_refill + n, 0, n_seq_max);
    struct batch_freer { llama_batch & b; ~batch_freer() { llama_batch_free(b); } } freer{block};
    int32_t k = 0;
    auto add = [&](llama_token t, llama_pos pos, const llama_seq_id * seqs, int32_t n_seq, bool logits, dmtd_row role) {
        block.token[k] = t;
        block.pos[k] = pos;
        block.n_seq_id[k] = n_seq;
        for (int32_t j = 0; j < n_seq; ++j) {
            block.seq_id[k][j] = seqs[j];
            b.roles[llama_dmtd_binding::key(seqs[j], pos)] = role;
        }
        block.logits[k] = logits;
        ++k;
    };
    std::vector<std::pair<llama_seq_id, std::vector<std::pair<llama_pos, llama_token>>>> removed;
    dmtd_step_guard guard{b}; // the roles and refill cells are cleared however this ends
    const bool copies = dmtd_copies_refill_kv(ctx, b, refilled, n_refill + n);
    for (const llama_seq_id s : refilled) {
        auto & st = b.seqs[s];
        if (st.pending.empty() || !b.params.refill) {
            continue; // without refill the pending tokens only count the steps since the head
        }
        for (const auto & [pos, tok] : st.pending) {
            add(tok, pos, &s, 1, false, copies ? dmtd_row::refill : dmtd_row::embd);
        }
        llama_memory_seq_rm(mem, s, st.pending.front().first, -1);
        removed.emplace_back(s, st.pending);
    }
    for (int32_t i = 0; i < n; ++i) {
        // without flags llama_decode outputs the last token only
        add(batch.token[i], batch.pos[i], batch.seq_id[i], batch.n_seq_id[i], batch.logits ? batch.logits[i] != 0 : i == n - 1,
            prompt ? dmtd_row::prompt : head[i] ? dmtd_row::head : dmtd_row::embd);
    }
    block.n_tokens = k;
    b.current = llama_dmtd_binding::step::full;
    const int32_t rc = dmtd_decode_in_pieces(ctx, block, false);
    b.current = llama_dmtd_binding::step::none;
    if (rc != 0) {
        // the pieces decoded before the failure go as well, as upstream removes a failed ubatch
        for (int32_t i = 0; i < k; ++i) {
            for (int32_t j = 0; j < block.n_seq_id[i]; ++j) {
                llama_memory_seq_rm(mem, block.seq_id[i][j], block.pos[i], block.pos[i] + 1);
            }
        }
        // put the removed positions back as they were: decoding layers only, embedding input,
        // the same history (their thinking layers stay to be refilled)
        std::string message = "llama_decode returned " + std::to_string(rc);
        for (auto & [s, tokens] : removed) {
            llama_batch again = llama_batch_init((int32_t) tokens.size(), 0, 1);
            for (size_t j = 0; j < tokens.size(); ++j) {
                again.token[j] = tokens[j].second;
                again.pos[j] = tokens[j].first;
                again.n_seq_id[j] = 1;
                again.seq_id[j][0] = s;
                again.logits[j] = false;
            }
            again.n_tokens = (int32_t) tokens.size();
            // not abortable: a cancelled head step must still leave the cache as it was
            b.current = llama_dmtd_binding::step::decoding_only;
            const int32_t again_rc = dmtd_decode_in_pieces(ctx, again, true);
            b.current = llama_dmtd_binding::step::none;
            if (again_rc != 0) {
                // the sequence keeps its cache up to the removed positions and starts a new cycle
                b.seqs[s].pending.clear();
                b.seqs[s].next_is_head = true;
                message += "; sequence " + std::to_string(s) + " lost its last " + std::to_string(tokens.size()) + " positions";
            }
            llama_batch_free(again);
        }
        return dmtd_fail(rc, message);
    }
    for (int32_t i = 0; i < n; ++i) {
        for (int32_t j = 0; j < batch.n_seq_id[i]; ++j) {
            auto & st = b.seqs[batch.seq_id[i][j]];
            if (prompt || head[i]) {
                st.pending.clear();
                st.next_is_head = prompt;
            } else {
                st.pending.emplace_back(batch.pos[i], batch.token[i]);
            }
        }
        // the last piece holds the batch's own rows (dmtd_decode_in_pieces), and their logits
        b.out_index[i] = n_refill + i - dmtd_last_piece_start(ctx, k);
        b.full[i] = prompt || head[i];
    }
    return LLAMA_DMTD_OK;
}

// The sequences' pending tokens after what the cache now holds before the batch's positions.
void dmtd_reconcile_batch(llama_dmtd_binding & b, const llama_batch & batch) {
    std::unordered_map<llama_seq_id, llama_pos> first;
    for (int32_t i = 0; i < batch.n_tokens; ++i) {
        for (int32_t j = 0; j < batch.n_seq_id[i]; ++j) {
            auto it = first.emplace(batch.seq_id[i][j], batch.pos[i]).first;
            it->second = std::min(it->second, batch.pos[i]);
        }
    }
    for (const auto & [s, p] : first) {
        dmtd_reconcile(b.seqs[s], p);
    }
}

// The context's DMTD state, made ready for the batch's results; NULL with the error recorded in status.
llama_dmtd_binding * dmtd_binding_for(llama_context * ctx, const llama_batch & batch, int32_t & status) {
    dmtd_last_error_msg.clear();
    if (ctx == nullptr) {
        status = dmtd_fail(LLAMA_DMTD_ERR_INVALID_ARG, "context must not be NULL");
        return nullptr;
    }
    if (!ctx->dmtd) {
        status = dmtd_fail(LLAMA_DMTD_ERR_NOT_SET, "the context decodes without DMTD (llama_set_dmtd)");
        return nullptr;
    }
    if (!dmtd_batch_usable(batch)) {
        status = dmtd_fail(LLAMA_DMTD_ERR_INVALID_ARG, "a DMTD batch needs tokens with explicit positions and sequences");
        return nullptr;
    }
    if (batch.n_tokens > (int32_t) llama_n_batch(ctx)) {
        status = dmtd_fail(LLAMA_DMTD_ERR_INVALID_ARG, "the batch has " + std::to_string(batch.n_tokens) + " tokens, more than the context's n_batch "
                           + std::to_string(llama_n_batch(ctx)));
        return nullptr;
    }
    ctx->dmtd->out_index.resize(batch.n_tokens);
    ctx->dmtd->full.resize(batch.n_tokens);
    return ctx->dmtd.get();
}

} // namespace

int32_t llama_dmtd_prefill(struct llama_context * ctx, struct llama_batch batch) {
    int32_t status = LLAMA_DMTD_OK;
    llama_dmtd_binding * b = dmtd_binding_for(ctx, batch, status);
    if (b == nullptr) {
        return status;
    }
    dmtd_reconcile_batch(*b, batch);
    return dmtd_full_step(ctx, *b, batch, {});
}

int32_t llama_dmtd_decode(struct llama_context * ctx, struct llama_batch batch) {
    int32_t status = LLAMA_DMTD_OK;
    llama_dmtd_binding * b = dmtd_binding_for(ctx, batch, status);
    if (b == nullptr) {
        return status;
    }
    const int32_t n = batch.n_tokens;
    llama_memory_t mem = llama_get_memory(ctx);
    std::unordered_map<llama_seq_id, int32_t> count;
    bool prompt = false;
    for (int32_t i = 0; i < n; ++i) {
        if (batch.n_seq_id[i] != 1) {
            prompt = true; // a token shared by several sequences can only be a prompt's
            continue;
        }
        const llama_seq_id s = batch.seq_id[i][0];
        prompt |= ++count[s] > 1 || llama_memory_seq_pos_max(mem, s) < 0;
    }
    dmtd_reconcile_batch(*b, batch);
    if (prompt) {
        return dmtd_full_step(ctx, *b, batch, {});
    }

    const llama_dmtd_params & p = b->params;
    std::vector<uint8_t> head(n);
    bool any_head = false;
    for (int32_t i = 0; i < n; ++i) {
        const auto & st = b->seqs[batch.seq_id[i][0]];
        head[i] = p.cycle <= 1 || (p.phase == LLAMA_DMTD_PHASE_ABSOLUTE ? batch.pos[i] % p.cycle == 0
                                   : st.next_is_head || (int32_t) st.pending.size() >= p.cycle - 1);
        any_head |= head[i] != 0;
    }
    if (any_head) {
        return dmtd_full_step(ctx, *b, batch, head);
    }
    const int32_t rc = dmtd_decode_as(ctx, *b, llama_dmtd_binding::step::decoding_only, batch);
    if (rc != 0) {
        return dmtd_fail(rc, "llama_decode returned " + std::to_string(rc));
    }
    for (int32_t i = 0; i < n; ++i) {
        b->seqs[batch.seq_id[i][0]].pending.emplace_back(batch.pos[i], batch.token[i]);
        b->out_index[i] = i;
        b->full[i] = 0;
    }
    return LLAMA_DMTD_OK;
}

int32_t llama_dmtd_score(struct llama_context * ctx, struct llama_batch batch) {
    int32_t status = LLAMA_DMTD_OK;
    llama_dmtd_binding * b = dmtd_binding_for(ctx, batch, status);
    if (b == nullptr) {
        return status;
    }
    for (int32_t i = 0; i < batch.n_tokens; ++i) {
        b->roles[llama_dmtd_binding::key(batch.seq_id[i][0], batch.pos[i])] =
            batch.pos[i] % b->params.cycle == 0 ? dmtd_row::head : dmtd_row::embd;
    }
    const int32_t rc = dmtd_decode_as(ctx, *b, llama_dmtd_binding::step::full, batch);
    for (int32_t i = 0; i < batch.n_tokens; ++i) {
        auto & st = b->seqs[batch.seq_id[i][0]];
        st.pending.clear();
        st.next_is_head = true;
    }
    return rc == 0 ? LLAMA_DMTD_OK : dmtd_fail(rc, "llama_decode returned " + std::to_string(rc));
}

int32_t llama_dmtd_output_index(const struct llama_context * ctx, int32_t i) {
    const llama_dmtd_binding * b = ctx ? ctx->dmtd.get() : nullptr;
    return b && i >= 0 && i < (int32_t) b->out_index.size() ? b->out_index[i] : -1;
}

int32_t llama_dmtd_full_step(const struct llama_context * ctx, int32_t i) {
    const llama_dmtd_binding * b = ctx ? ctx->dmtd.get() : nullptr;
    return b && i >= 0 && i < (int32_t) b->full.size() ? b->full[i] : -1;
}

int32_t llama_dmtd_seq_pending(const struct llama_context * ctx, llama_seq_id seq_id, llama_token * tokens, int32_t capacity,
                               bool * starts_cycle) {
    const llama_dmtd_binding * b = ctx ? ctx->dmtd.get() : nullptr;
    if (b == nullptr) {
        return dmtd_fail(LLAMA_DMTD_ERR_NOT_SET, "the context decodes without DMTD (llama_set_dmtd)");
    }
    const auto it = b->seqs.find(seq_id);
    llama_dmtd_binding::seq_state st;
    if (it != b->seqs.end()) {
        st = it->second;
        // as the cache now holds the sequence (it may have been trimmed since the last decode)
        dmtd_reconcile(st, llama_memory_seq_pos_max(llama_get_memory(ctx), seq_id) + 1);
    }
    if (starts_cycle) {
        *starts_cycle = st.next_is_head;
    }
    const auto & pending = st.pending;
    for (int32_t j = 0; j < (int32_t) pending.size() && j < capacity && tokens != nullptr; ++j) {
        tokens[j] = pending[j].second;
    }
    return (int32_t) pending.size();
}

int32_t llama_dmtd_seq_set_pending(struct llama_context * ctx, llama_seq_id seq_id, const llama_token * tokens, int32_t n, bool start_cycle) {
    llama_dmtd_binding * b = ctx ? ctx->dmtd.get() : nullptr;
    if (b == nullptr) {
        return dmtd_fail(LLAMA_DMTD_ERR_NOT_SET, "the context decodes without DMTD (llama_set_dmtd)");
    }
    const llama_pos last = llama_memory_seq_pos_max(llama_get_memory(ctx), seq_id);
    if (n < 0 || (n > 0 && tokens == nullptr) || n > last + 1) {
        return dmtd_fail(LLAMA_DMTD_ERR_INVALID_ARG, "sequence " + std::to_string(seq_id) + " holds " + std::to_string(last + 1)
                    + " positions; cannot make " + std::to_string(n) + " of them pending");
    }
    auto & st = b->seqs[seq_id];
    st.pending.clear();
    for (int32_t j = 0; j < n; ++j) {
        st.pending.emplace_back(last - n + 1 + j, tokens[j]);
    }
    st.next_is_head = start_cycle;
    return LLAMA_DMTD_OK;
}

namespace {

// The cells of seq_id's stream and their thinking-layer visibility (without refill), read back
// from the device; NULL with the error recorded in status.
struct dmtd_hidden_cells {
    const llama_kv_cells * cells = nullptr;
    ggml_tensor * bias = nullptr;
    size_t offset = 0; // of the stream's first cell in bias
    std::vector<float> host;
};

bool dmtd_hidden_cells_of(const llama_context * ctx, llama_seq_id seq_id, dmtd_hidden_cells & out, int32_t & status) {
    llama_dmtd_binding * b = ctx ? ctx->dmtd.get() : nullptr;
    if (b == nullptr) {
        status = dmtd_fail(LLAMA_DMTD_ERR_NOT_SET, "the context decodes without DMTD (llama_set_dmtd)");
        return false;
    }
    auto * kv = dynamic_cast<llama_kv_cache *>(ctx->get_memory());
    if (kv == nullptr) {
        status = dmtd_fail(LLAMA_DMTD_ERR_INVALID_ARG, "the context's memory is not a plain KV cache");
        return false;
    }
    if (seq_id < 0 || seq_id >= (llama_seq_id) llama_n_seq_max(ctx)) {
        status = dmtd_fail(LLAMA_DMTD_ERR_INVALID_ARG, "no sequence " + std::to_string(seq_id));
        return false;
    }
    if (!b->visibility) {
        b->visibility = std::make_unique<llama_kv_visibility>();
    }
    try {
        out.bias = b->visibility->cells(0, kv->get_k_storage(0));
    } catch (const std::exception & e) {
        status = dmtd_fail(LLAMA_DMTD_ERR_INVALID_ARG, e.what());
        return false;
    }
    out.cells = &kv->get_cells(seq_id);
    // a unified cache has one stream; otherwise each sequence has its own (llama_kv_cache's seq_to_stream)
    out.offset = kv->get_n_stream() == 1 ? 0 : (size_t) seq_id * kv->get_size();
    out.host.resize(out.cells->size());
    ggml_backend_tensor_get(out.bias, out.host.data(), out.offset * sizeof(float), out.host.size() * sizeof(float));
    return true;
}

} // namespace

int32_t llama_dmtd_seq_hidden(const struct llama_context * ctx, llama_seq_id seq_id, llama_pos * positions, int32_t capacity) {
    if (ctx != nullptr && ctx->dmtd && ctx->dmtd->params.refill) {
        return 0; // heads refill every position
    }
    dmtd_hidden_cells h;
    int32_t status = LLAMA_DMTD_OK;
    if (!dmtd_hidden_cells_of(ctx, seq_id, h, status)) {
        return status;
    }
    std::vector<llama_pos> hidden;
    for (uint32_t i = 0; i < h.cells->size(); ++i) {
        if (!h.cells->is_empty(i) && h.cells->seq_has(i, seq_id) && h.host[i] != 0.0f) {
            hidden.push_back(h.cells->pos_get(i));
        }
    }
    std::sort(hidden.begin(), hidden.end());
    for (int32_t j = 0; j < (int32_t) hidden.size() && j < capacity && positions != nullptr; ++j) {
        positions[j] = hidden[j];
    }
    return (int32_t) hidden.size();
}

int32_t llama_dmtd_seq_set_hidden(struct llama_context * ctx, llama_seq_id seq_id, const llama_pos * positions, int32_t n) {
    dmtd_hidden_cells h;
    int32_t status = LLAMA_DMTD_OK;
    if (!dmtd_hidden_cells_of(ctx, seq_id, h, status)) {
        return status;
    }
    if (n < 0 || (n > 0 && positions == nullptr)) {
        return dmtd_fail(LLAMA_DMTD_ERR_INVALID_ARG, "invalid positions");
    }
    if (ctx->dmtd->params.refill && n > 0) {
        return dmtd_fail(LLAMA_DMTD_ERR_INVALID_ARG, "the context's DMTD refills: no position stays hidden");
    }
    std::vector<llama_pos> hidden(positions, positions + n);
    std::sort(hidden.begin(), hidden.end());
    std::vector<float> next = h.host;
    int32_t found = 0;
    for (uint32_t i = 0; i < h.cells->size(); ++i) {
        if (h.cells->is_empty(i) || !h.cells->seq_has(i, seq_id)) {
            continue;
        }
        const bool hide = std::binary_search(hidden.begin(), hidden.end(), h.cells->pos_get(i));
        next[i] = hide ? llama_kv_visibility::HIDDEN : 0.0f;
        found += hide;
    }
    if (found != (int32_t) (std::unique(hidden.begin(), hidden.end()) - hidden.begin())) {
        return dmtd_fail(LLAMA_DMTD_ERR_INVALID_ARG, "sequence " + std::to_string(seq_id) + " holds only " + std::to_string(found)
                    + " of the " + std::to_string(n) + " positions to hide");
    }
    ggml_backend_tensor_set(h.bias, next.data(), h.offset * sizeof(float), next.size() * sizeof(float));
    return LLAMA_DMTD_OK;
}

const char * llama_dmtd_last_error(void) {
    return dmtd_last_error_msg.c_str();
}
