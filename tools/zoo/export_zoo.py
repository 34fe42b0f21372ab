#!/usr/bin/python3
# export_zoo.py - export the usher "model zoo" as full-weight ONNX files.
#
# Why this exists: usher's tests and benchmarks use the graphs of well-known
# models (torchvision CNNs/ViT, NVIDIA's SSD300 detector and BERT/DistilBERT/
# GPT-2 encoders). A developer runs this script by hand (CI does not run it:
# it needs torch, takes a long time and writes ~5 GB). Its full-weight output
# is then stripped of weight data by usher's C tool and the resulting
# graph-only models are committed under models/zoo/. Re-run it only to
# regenerate or add zoo models.
#
# Usage:  /usr/bin/python3 tools/zoo/export_zoo.py OUTDIR [NAME ...]
#         (all models when no NAME is given; see tools/zoo/README.md)
#
# Requirements: torch 1.13, torchvision 0.14, onnx 1.12 (Debian 12:
# python3-torch, python3-torchvision, python3-onnx). Weights are random
# (weights=None / fixed seed); only the graph structure and shapes matter.
# The language models are plain-torch re-implementations of the Hugging Face
# architectures (transformers is not needed) with identical parameter shapes.

import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.models as tvm
import onnx

OPSET = 17
SEQ_LEN = 128
EXPORT_BATCH = 2  # example batch used for tracing; batch is a symbolic axis


# --------------------------------------------------------------------------
# BERT (Hugging Face BertModel, absolute position embeddings, with pooler)
# --------------------------------------------------------------------------

class BertEmbeddings(nn.Module):
    def __init__(self, vocab, hidden, max_pos, type_vocab, eps):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(max_pos, hidden)
        self.token_type_embeddings = nn.Embedding(type_vocab, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.register_buffer("position_ids",
                             torch.arange(max_pos).unsqueeze(0),
                             persistent=False)

    def forward(self, input_ids):
        seq = input_ids.shape[1]
        position_ids = self.position_ids[:, :seq]
        token_type_ids = torch.zeros_like(input_ids)  # all segment 0
        x = (self.word_embeddings(input_ids)
             + self.token_type_embeddings(token_type_ids)
             + self.position_embeddings(position_ids))
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def split(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x, ext_mask):
        q = self.split(self.query(x))
        k = self.split(self.key(x))
        v = self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2))
        scores = scores / math.sqrt(self.head_dim)
        scores = scores + ext_mask
        probs = F.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        b, t = ctx.shape[0], ctx.shape[1]
        return ctx.view(b, t, self.heads * self.head_dim)


class BertSelfOutput(nn.Module):
    def __init__(self, hidden, eps):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, h, residual):
        return self.LayerNorm(self.dense(h) + residual)


class BertAttention(nn.Module):
    def __init__(self, hidden, heads, eps):
        super().__init__()
        self.self = BertSelfAttention(hidden, heads)
        self.output = BertSelfOutput(hidden, eps)

    def forward(self, x, ext_mask):
        return self.output(self.self(x, ext_mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, hidden, inter):
        super().__init__()
        self.dense = nn.Linear(hidden, inter)
        self.act = nn.GELU()  # exact (erf) GELU, HF "gelu"

    def forward(self, x):
        return self.act(self.dense(x))


class BertOutput(nn.Module):
    def __init__(self, hidden, inter, eps):
        super().__init__()
        self.dense = nn.Linear(inter, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, h, residual):
        return self.LayerNorm(self.dense(h) + residual)


class BertLayer(nn.Module):
    def __init__(self, hidden, heads, inter, eps):
        super().__init__()
        self.attention = BertAttention(hidden, heads, eps)
        self.intermediate = BertIntermediate(hidden, inter)
        self.output = BertOutput(hidden, inter, eps)

    def forward(self, x, ext_mask):
        a = self.attention(x, ext_mask)
        return self.output(self.intermediate(a), a)


class BertPooler(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.activation = nn.Tanh()

    def forward(self, h):
        return self.activation(self.dense(h[:, 0]))


class BertModel(nn.Module):
    def __init__(self, vocab=30522, hidden=768, layers=12, heads=12,
                 inter=3072, max_pos=512, type_vocab=2, eps=1e-12):
        super().__init__()
        self.embeddings = BertEmbeddings(vocab, hidden, max_pos, type_vocab,
                                         eps)
        self.encoder = nn.Module()  # HF BertEncoder: parameter names
        self.encoder.layer = nn.ModuleList(  # encoder.layer.N.*
            [BertLayer(hidden, heads, inter, eps) for _ in range(layers)])
        self.pooler = BertPooler(hidden)

    def forward(self, input_ids, attention_mask):
        # HF get_extended_attention_mask: [B,1,1,T], 0 keep, finfo.min drop
        ext = attention_mask[:, None, None, :].to(torch.float32)
        ext = (1.0 - ext) * torch.finfo(torch.float32).min
        h = self.embeddings(input_ids)
        for layer in self.encoder.layer:
            h = layer(h, ext)
        return h, self.pooler(h)


# --------------------------------------------------------------------------
# DistilBERT (Hugging Face DistilBertModel, sinusoidal_pos_embds=False)
# --------------------------------------------------------------------------

class DistilEmbeddings(nn.Module):
    def __init__(self, vocab, dim, max_pos):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, dim)
        self.position_embeddings = nn.Embedding(max_pos, dim)
        self.LayerNorm = nn.LayerNorm(dim, eps=1e-12)
        self.register_buffer("position_ids",
                             torch.arange(max_pos).unsqueeze(0),
                             persistent=False)

    def forward(self, input_ids):
        seq = input_ids.shape[1]
        pos = self.position_ids[:, :seq]
        x = self.word_embeddings(input_ids) + self.position_embeddings(pos)
        return self.LayerNorm(x)


class DistilMHA(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.q_lin = nn.Linear(dim, dim)
        self.k_lin = nn.Linear(dim, dim)
        self.v_lin = nn.Linear(dim, dim)
        self.out_lin = nn.Linear(dim, dim)

    def forward(self, x, mask):
        b, t, _ = x.shape

        def shape(y):
            return y.view(b, -1, self.heads, self.head_dim).transpose(1, 2)

        q = shape(self.q_lin(x)) / math.sqrt(self.head_dim)
        k = shape(self.k_lin(x))
        v = shape(self.v_lin(x))
        scores = torch.matmul(q, k.transpose(2, 3))
        # HF: mask (B,T) -> (B,1,1,T); masked_fill(mask == 0, finfo.min)
        m = (mask == 0).view(b, 1, 1, t).expand_as(scores)
        scores = scores.masked_fill(
            m, torch.tensor(torch.finfo(scores.dtype).min))
        weights = F.softmax(scores, dim=-1)
        ctx = torch.matmul(weights, v)
        ctx = ctx.transpose(1, 2).contiguous().view(b, -1,
                                                    self.heads * self.head_dim)
        return self.out_lin(ctx)


class DistilFFN(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden)
        self.lin2 = nn.Linear(hidden, dim)
        self.activation = nn.GELU()

    def forward(self, x):
        return self.lin2(self.activation(self.lin1(x)))


class DistilBlock(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.attention = DistilMHA(dim, heads)
        self.sa_layer_norm = nn.LayerNorm(dim, eps=1e-12)
        self.ffn = DistilFFN(dim, hidden)
        self.output_layer_norm = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, x, mask):
        sa = self.sa_layer_norm(self.attention(x, mask) + x)
        return self.output_layer_norm(self.ffn(sa) + sa)


class DistilBertModel(nn.Module):
    def __init__(self, vocab=30522, dim=768, layers=6, heads=12, hidden=3072,
                 max_pos=512):
        super().__init__()
        self.embeddings = DistilEmbeddings(vocab, dim, max_pos)
        self.transformer = nn.Module()  # HF Transformer: transformer.layer.N
        self.transformer.layer = nn.ModuleList(
            [DistilBlock(dim, heads, hidden) for _ in range(layers)])

    def forward(self, input_ids, attention_mask):
        h = self.embeddings(input_ids)
        for blk in self.transformer.layer:
            h = blk(h, attention_mask)
        return h


# --------------------------------------------------------------------------
# GPT-2 small (Hugging Face GPT2Model, no LM head)
# --------------------------------------------------------------------------

class Conv1D(nn.Module):
    """HF transformers Conv1D: a linear layer with weight stored [in, out]."""

    def __init__(self, nf, nx):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x):
        size_out = x.size()[:-1] + (self.nf,)
        x = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        return x.view(size_out)


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(
        math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2Attention(nn.Module):
    def __init__(self, n_embd, n_head, n_pos):
        super().__init__()
        self.n_head = n_head
        self.head_dim = n_embd // n_head
        self.split_size = n_embd
        self.register_buffer(
            "bias",
            torch.tril(torch.ones((n_pos, n_pos), dtype=torch.bool))
            .view(1, 1, n_pos, n_pos),
            persistent=False)
        self.c_attn = Conv1D(3 * n_embd, n_embd)
        self.c_proj = Conv1D(n_embd, n_embd)

    def split_heads(self, x):
        new_shape = x.size()[:-1] + (self.n_head, self.head_dim)
        return x.view(new_shape).permute(0, 2, 1, 3)

    def forward(self, x):
        q, k, v = self.c_attn(x).split(self.split_size, dim=2)
        q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)
        w = torch.matmul(q, k.transpose(-1, -2))
        w = w / torch.full([], v.size(-1) ** 0.5, dtype=w.dtype)
        qlen, klen = q.size(-2), k.size(-2)
        causal = self.bias[:, :, klen - qlen:klen, :klen]
        w = torch.where(causal, w,
                        torch.full([], torch.finfo(w.dtype).min,
                                   dtype=w.dtype))
        w = F.softmax(w, dim=-1)
        a = torch.matmul(w, v).permute(0, 2, 1, 3).contiguous()
        a = a.view(a.size()[:-2] + (self.n_head * self.head_dim,))
        return self.c_proj(a)


class GPT2MLP(nn.Module):
    def __init__(self, n_embd, inner):
        super().__init__()
        self.c_fc = Conv1D(inner, n_embd)
        self.c_proj = Conv1D(n_embd, inner)

    def forward(self, x):
        return self.c_proj(gelu_new(self.c_fc(x)))


class GPT2Block(nn.Module):
    def __init__(self, n_embd, n_head, n_pos, eps):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, eps=eps)
        self.attn = GPT2Attention(n_embd, n_head, n_pos)
        self.ln_2 = nn.LayerNorm(n_embd, eps=eps)
        self.mlp = GPT2MLP(n_embd, 4 * n_embd)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2Model(nn.Module):
    def __init__(self, vocab=50257, n_pos=1024, n_embd=768, n_layer=12,
                 n_head=12, eps=1e-5):
        super().__init__()
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(n_pos, n_embd)
        self.h = nn.ModuleList(
            [GPT2Block(n_embd, n_head, n_pos, eps) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd, eps=eps)

    def forward(self, input_ids):
        seq = input_ids.size(-1)
        position_ids = torch.arange(0, seq, dtype=torch.long).unsqueeze(0)
        h = self.wte(input_ids) + self.wpe(position_ids)
        for blk in self.h:
            h = blk(h)
        return self.ln_f(h)


# --------------------------------------------------------------------------
# SSD300 v1.1 (NVIDIA DeepLearningExamples PyTorch/Detection/SSD, ResNet-50)
# --------------------------------------------------------------------------

class SSD300ResNet50(nn.Module):
    """NVIDIA's SSD300 v1.1 detector, written from its architecture.

    Backbone: torchvision ResNet-50 up to and including layer3 (conv4_x);
    conv5_x, avgpool and fc are dropped and layer3's first bottleneck gets
    stride 1 (conv1, conv2 and the downsample conv), so conv4_x gives 1024
    channels at 38x38 for a 300x300 input. Five extra blocks (1x1 conv ->
    BN -> ReLU -> 3x3 conv -> BN -> ReLU, convs without bias; the first three
    3x3 convs stride 2 pad 1, the last two stride 1 pad 0) give feature maps
    38, 19, 10, 5, 3, 1 with 1024, 512, 512, 256, 256, 256 channels. Each
    map has a 3x3 loc conv (4 coords per default box) and a 3x3 conf conv
    (81 COCO classes incl. background) with 4, 6, 6, 6, 4, 4 default boxes:
    8732 boxes in all. Outputs are the raw heads, locs [N, 4, 8732] and
    confs [N, 81, 8732] (no box decoding or NMS, as in NVIDIA's model).
    """

    OUT_CHANNELS = [1024, 512, 512, 256, 256, 256]
    MID_CHANNELS = [256, 256, 128, 128, 128]
    NUM_DEFAULTS = [4, 6, 6, 6, 4, 4]
    NUM_CLASSES = 81

    def __init__(self):
        super().__init__()
        rn = tvm.resnet50(weights=None)
        trunk = nn.Sequential(rn.conv1, rn.bn1, rn.relu, rn.maxpool,
                              rn.layer1, rn.layer2, rn.layer3)
        first = rn.layer3[0]
        first.conv1.stride = (1, 1)
        first.conv2.stride = (1, 1)
        first.downsample[0].stride = (1, 1)
        self.feature_extractor = trunk
        chans = self.OUT_CHANNELS
        blocks = []
        for i, (cin, mid, cout) in enumerate(zip(chans[:-1],
                                                 self.MID_CHANNELS,
                                                 chans[1:])):
            stride, pad = (2, 1) if i < 3 else (1, 0)
            blocks.append(nn.Sequential(
                nn.Conv2d(cin, mid, kernel_size=1, bias=False),
                nn.BatchNorm2d(mid),
                nn.ReLU(inplace=True),
                nn.Conv2d(mid, cout, kernel_size=3, stride=stride,
                          padding=pad, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True)))
        self.additional_blocks = nn.ModuleList(blocks)
        self.loc = nn.ModuleList(
            [nn.Conv2d(c, nd * 4, kernel_size=3, padding=1)
             for c, nd in zip(chans, self.NUM_DEFAULTS)])
        self.conf = nn.ModuleList(
            [nn.Conv2d(c, nd * self.NUM_CLASSES, kernel_size=3, padding=1)
             for c, nd in zip(chans, self.NUM_DEFAULTS)])
        for mod in [*self.additional_blocks, *self.loc, *self.conf]:
            for p in mod.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)

    def forward(self, x):
        x = self.feature_extractor(x)
        feats = [x]
        for blk in self.additional_blocks:
            x = blk(x)
            feats.append(x)
        locs, confs = [], []
        for f, l, c in zip(feats, self.loc, self.conf):
            n = f.size(0)
            locs.append(l(f).reshape(n, 4, -1))
            confs.append(c(f).reshape(n, self.NUM_CLASSES, -1))
        return (torch.cat(locs, 2).contiguous(),
                torch.cat(confs, 2).contiguous())


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------

def _tv(ctor, size=224, **kw):
    def build():
        return ctor(weights=None, **kw), size
    return build


VISION = {
    "resnet18": _tv(tvm.resnet18),
    "resnet50": _tv(tvm.resnet50),
    "resnet101": _tv(tvm.resnet101),
    "resnet152": _tv(tvm.resnet152),
    "vgg16": _tv(tvm.vgg16),
    "vgg19": _tv(tvm.vgg19),
    "alexnet": _tv(tvm.alexnet),
    "inception-v3": _tv(tvm.inception_v3, 299, aux_logits=False,
                        init_weights=False),
    "mobilenet-v2": _tv(tvm.mobilenet_v2),
    "mobilenet-v3-large": _tv(tvm.mobilenet_v3_large),
    "shufflenet-v2": _tv(tvm.shufflenet_v2_x1_0),
    "squeezenet": _tv(tvm.squeezenet1_0),
    "efficientnet-b0": _tv(tvm.efficientnet_b0),
    "densenet121": _tv(tvm.densenet121),
    "densenet169": _tv(tvm.densenet169),
    "densenet201": _tv(tvm.densenet201),
    "vit-b16": _tv(tvm.vit_b_16),
}

DETECTION = {
    # name: (constructor, input size, output names)
    "ssd300-resnet50": (SSD300ResNet50, 300, ["locs", "confs"]),
}

LANGUAGE = {
    # name: (constructor, has attention_mask, output names)
    "bert-base": (lambda: BertModel(), True,
                  ["last_hidden_state", "pooler_output"]),
    "bert-large": (lambda: BertModel(hidden=1024, layers=24, heads=16,
                                     inter=4096), True,
                   ["last_hidden_state", "pooler_output"]),
    "distilbert": (lambda: DistilBertModel(), True, ["last_hidden_state"]),
    "gpt2": (lambda: GPT2Model(), False, ["last_hidden_state"]),
}

ALL_NAMES = list(VISION) + list(DETECTION) + list(LANGUAGE)


def build(name):
    """Return (model, example_args, input_names, output_names)."""
    torch.manual_seed(0)
    if name in VISION:
        model, size = VISION[name]()
        args = (torch.randn(EXPORT_BATCH, 3, size, size),)
        return model, args, ["input"], ["output"]
    if name in DETECTION:
        ctor, size, outs = DETECTION[name]
        model = ctor()
        args = (torch.randn(EXPORT_BATCH, 3, size, size),)
        return model, args, ["input"], outs
    ctor, has_mask, outs = LANGUAGE[name]
    model = ctor()
    ids = torch.randint(0, 1000, (EXPORT_BATCH, SEQ_LEN), dtype=torch.int64)
    if has_mask:
        mask = torch.ones(EXPORT_BATCH, SEQ_LEN, dtype=torch.int64)
        mask[1, SEQ_LEN // 2:] = 0
        return model, (ids, mask), ["input_ids", "attention_mask"], outs
    return model, (ids,), ["input_ids"], outs


def break_ties(model):
    """Make every constant-valued float tensor distinct.

    Random init leaves many tensors all-ones/all-zeros (LayerNorm and
    BatchNorm weight/bias and running stats, zero-initialised biases).
    torch.onnx.export in eval mode de-duplicates initializers *by value*
    (_jit_pass_onnx_deduplicate_initializers), so those tensors would be
    merged into one initializer shared by many nodes -- a graph that a
    real, trained model never has. Adding a little noise to them gives the
    same graph structure as exporting trained weights.
    """
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + \
                list(model.named_buffers()):
            if not t.is_floating_point() or t.numel() < 2:
                continue
            flat = t.reshape(-1)
            if not bool((flat == flat[0]).all()):
                continue
            noise = torch.rand(t.shape, generator=g, dtype=t.dtype)
            if name.endswith("running_var"):
                t.mul_(1.0 + 0.1 * noise)  # keep variances positive
            else:
                t.add_(0.02 * (noise - 0.5))


def pin_static_dims(path, model, args, out_names):
    """Give graph outputs their static non-batch dims.

    torch 1.13 cannot infer shapes through LayerNormalization, so outputs
    after it are declared e.g. [batch, 'LayerNormalization..._dim_1', 768]
    although only the batch axis is dynamic. Replace every non-batch
    dim_param of an output with the size torch actually produces.
    Returns True when the file was rewritten.
    """
    m = onnx.load(path)
    loose = [o for o in m.graph.output
             if any(d.HasField("dim_param")
                    for d in o.type.tensor_type.shape.dim[1:])]
    if not loose:
        return False
    with torch.no_grad():
        outs = model(*args)
    if not isinstance(outs, (tuple, list)):
        outs = (outs,)
    shapes = dict(zip(out_names, (tuple(o.shape) for o in outs)))
    for o in loose:
        for i, d in enumerate(o.type.tensor_type.shape.dim):
            if i > 0 and d.HasField("dim_param"):
                d.dim_value = shapes[o.name][i]  # clears dim_param (oneof)
    onnx.save(m, path)
    return True


def initializer_elements(path):
    m = onnx.load(path)
    total = 0
    for init in m.graph.initializer:
        n = 1
        for d in init.dims:
            n *= d
        total += n
    return total


def export(name, outdir):
    model, args, in_names, out_names = build(name)
    model.eval()
    break_ties(model)
    params = sum(p.numel() for p in model.parameters())
    path = os.path.join(outdir, name + ".onnx")
    dyn = {n: {0: "batch"} for n in in_names + out_names}
    t0 = time.time()
    # Deliberately NOT under torch.no_grad(): with grad disabled,
    # nn.MultiheadAttention (vit-b16) takes its inference fast path
    # (aten::_native_multi_head_attention), which has no ONNX export.
    torch.onnx.export(model.eval(), args, path, opset_version=OPSET,
                      input_names=in_names, output_names=out_names,
                      dynamic_axes=dyn, do_constant_folding=True)
    pin_static_dims(path, model, args, out_names)
    secs = time.time() - t0
    elems = initializer_elements(path)
    size = os.path.getsize(path)
    print("%-20s params=%12d  onnx_init_elems=%12d  bytes=%12d  (%.0fs)"
          % (name, params, elems, size, secs), flush=True)
    try:
        onnx.checker.check_model(path)
    except Exception as e:  # report, keep going
        print("  CHECKER FAILED for %s: %s" % (name, e), flush=True)
        return False
    return True


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print("usage: export_zoo.py OUTDIR [NAME ...]\nnames: "
              + " ".join(ALL_NAMES), file=sys.stderr)
        return 2
    outdir = argv[1]
    names = argv[2:] or ALL_NAMES
    bad = [n for n in names if n not in ALL_NAMES]
    if bad:
        print("unknown model(s): %s\nknown: %s"
              % (" ".join(bad), " ".join(ALL_NAMES)), file=sys.stderr)
        return 2
    os.makedirs(outdir, exist_ok=True)
    ok = True
    for n in names:
        ok = export(n, outdir) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
