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
# YOLOv8n (Ultralytics ultralytics/nn/modules, yolov8.yaml at scale n)
# --------------------------------------------------------------------------

class YConv(nn.Module):
    """Ultralytics Conv: Conv2d (no bias, padding k//2) -> BN -> SiLU."""

    def __init__(self, c1, c2, k=1, s=1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=0.001, momentum=0.03)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class YBottleneck(nn.Module):
    def __init__(self, c1, c2, shortcut):
        super().__init__()
        self.cv1 = YConv(c1, c2, 3, 1)  # e=1.0 inside C2f
        self.cv2 = YConv(c2, c2, 3, 1)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """CSP bottleneck with 2 convolutions (YOLOv8): split, n bottlenecks, concat."""

    def __init__(self, c1, c2, n=1, shortcut=False):
        super().__init__()
        self.c = c2 // 2
        self.cv1 = YConv(c1, 2 * self.c, 1, 1)
        self.cv2 = YConv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(YBottleneck(self.c, self.c, shortcut)
                               for _ in range(n))

    def forward(self, x):
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, c1, c2, k=5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = YConv(c1, c_, 1, 1)
        self.cv2 = YConv(c_ * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x):
        y = [self.cv1(x)]
        y.extend(self.m(y[-1]) for _ in range(3))
        return self.cv2(torch.cat(y, 1))


class DFL(nn.Module):
    """Distribution focal loss integral: softmax over 16 bins, fixed 1x1 conv."""

    def __init__(self, c1=16):
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = torch.arange(
            c1, dtype=torch.float).view(1, c1, 1, 1)
        self.c1 = c1

    def forward(self, x):
        b, _, a = x.shape
        return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1)
                         .softmax(1)).view(b, 4, a)


class YDetect(nn.Module):
    """YOLOv8 Detect head, inference path of Ultralytics' ONNX export:
    decoded xywh boxes (DFL + dist2bbox, times stride) and sigmoid class
    scores, [N, 4 + nc, anchors]. No NMS."""

    def __init__(self, nc, ch, strides=(8, 16, 32)):
        super().__init__()
        self.nc, self.reg_max = nc, 16
        self.strides = strides
        c2 = max(16, ch[0] // 4, self.reg_max * 4)
        c3 = max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(nn.Sequential(
            YConv(x, c2, 3), YConv(c2, c2, 3),
            nn.Conv2d(c2, 4 * self.reg_max, 1)) for x in ch)
        self.cv3 = nn.ModuleList(nn.Sequential(
            YConv(x, c3, 3), YConv(c3, c3, 3), nn.Conv2d(c3, nc, 1))
            for x in ch)
        self.dfl = DFL(self.reg_max)

    def forward(self, xs):
        n = xs[0].shape[0]
        outs, anchors, strides = [], [], []
        for i, x in enumerate(xs):
            h, w = x.shape[2], x.shape[3]
            outs.append(torch.cat((self.cv2[i](x), self.cv3[i](x)), 1)
                        .view(n, 4 * self.reg_max + self.nc, -1))
            sx = torch.arange(w, dtype=torch.float32) + 0.5
            sy = torch.arange(h, dtype=torch.float32) + 0.5
            gy, gx = torch.meshgrid(sy, sx, indexing="ij")
            anchors.append(torch.stack((gx, gy), -1).view(-1, 2))
            strides.append(torch.ones(h * w, 1) * self.strides[i])
        anc = torch.cat(anchors).transpose(0, 1).unsqueeze(0)  # [1,2,A]
        std = torch.cat(strides).transpose(0, 1)               # [1,A]
        x = torch.cat(outs, 2)
        box, cls = x.split((4 * self.reg_max, self.nc), 1)
        lt, rb = self.dfl(box).chunk(2, 1)
        x1y1, x2y2 = anc - lt, anc + rb
        dbox = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * std
        return torch.cat((dbox, cls.sigmoid()), 1)


class YOLOv8(nn.Module):
    """yolov8.yaml: backbone Conv/C2f x4 + SPPF, PAN neck (upsample,
    concat, C2f), Detect on P3/P4/P5. Scale n: depth 0.33, width 0.25."""

    def __init__(self, nc=80, w=0.25, d=0.33):
        super().__init__()

        def c(x):
            return int(x * w)

        def r(x):
            return max(round(x * d), 1)

        self.b0 = YConv(3, c(64), 3, 2)
        self.b1 = YConv(c(64), c(128), 3, 2)
        self.b2 = C2f(c(128), c(128), r(3), True)
        self.b3 = YConv(c(128), c(256), 3, 2)
        self.b4 = C2f(c(256), c(256), r(6), True)
        self.b5 = YConv(c(256), c(512), 3, 2)
        self.b6 = C2f(c(512), c(512), r(6), True)
        self.b7 = YConv(c(512), c(1024), 3, 2)
        self.b8 = C2f(c(1024), c(1024), r(3), True)
        self.b9 = SPPF(c(1024), c(1024), 5)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.h12 = C2f(c(1024) + c(512), c(512), r(3))
        self.h15 = C2f(c(512) + c(256), c(256), r(3))
        self.h16 = YConv(c(256), c(256), 3, 2)
        self.h18 = C2f(c(256) + c(512), c(512), r(3))
        self.h19 = YConv(c(512), c(512), 3, 2)
        self.h21 = C2f(c(512) + c(1024), c(1024), r(3))
        self.detect = YDetect(nc, (c(256), c(512), c(1024)))

    def forward(self, x):
        x = self.b1(self.b0(x))
        p3 = self.b4(self.b3(self.b2(x)))
        p4 = self.b6(self.b5(p3))
        p5 = self.b9(self.b8(self.b7(p4)))
        h12 = self.h12(torch.cat((self.up(p5), p4), 1))
        h15 = self.h15(torch.cat((self.up(h12), p3), 1))
        h18 = self.h18(torch.cat((self.h16(h15), h12), 1))
        h21 = self.h21(torch.cat((self.h19(h18), p5), 1))
        return self.detect([h15, h18, h21])


# --------------------------------------------------------------------------
# T5 encoder (Hugging Face T5EncoderModel, t5-small config)
# --------------------------------------------------------------------------

class T5LayerNorm(nn.Module):
    """RMS norm without mean or bias (HF T5LayerNorm)."""

    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def t5_relative_bucket(rel, num_buckets=32, max_distance=128):
    """HF T5Attention._relative_position_bucket, bidirectional."""
    num_buckets //= 2
    buckets = (rel > 0).to(torch.long) * num_buckets
    rel = torch.abs(rel)
    max_exact = num_buckets // 2
    is_small = rel < max_exact
    large = max_exact + (torch.log(rel.float() / max_exact)
                         / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return buckets + torch.where(is_small, rel, large)


class T5Attention(nn.Module):
    def __init__(self, d, heads, d_kv, has_bias, buckets=32):
        super().__init__()
        inner = heads * d_kv
        self.heads, self.d_kv = heads, d_kv
        self.q = nn.Linear(d, inner, bias=False)
        self.k = nn.Linear(d, inner, bias=False)
        self.v = nn.Linear(d, inner, bias=False)
        self.o = nn.Linear(inner, d, bias=False)
        if has_bias:
            self.relative_attention_bias = nn.Embedding(buckets, heads)

    def compute_bias(self, q_len, k_len):
        ctx = torch.arange(q_len, dtype=torch.long)[:, None]
        mem = torch.arange(k_len, dtype=torch.long)[None, :]
        b = t5_relative_bucket(mem - ctx)
        return self.relative_attention_bias(b).permute(2, 0, 1).unsqueeze(0)

    def forward(self, x, bias):
        b, t, _ = x.shape

        def split(y):
            return y.view(b, -1, self.heads, self.d_kv).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = torch.matmul(q, k.transpose(3, 2)) + bias  # T5: no scaling
        w = F.softmax(scores.float(), dim=-1)
        ctx = torch.matmul(w, v).transpose(1, 2).contiguous()
        return self.o(ctx.view(b, -1, self.heads * self.d_kv))


class T5Block(nn.Module):
    def __init__(self, d, heads, d_kv, d_ff, has_bias):
        super().__init__()
        sa = nn.Module()
        sa.SelfAttention = T5Attention(d, heads, d_kv, has_bias)
        sa.layer_norm = T5LayerNorm(d)
        ff = nn.Module()
        ff.DenseReluDense = nn.Module()
        ff.DenseReluDense.wi = nn.Linear(d, d_ff, bias=False)
        ff.DenseReluDense.wo = nn.Linear(d_ff, d, bias=False)
        ff.layer_norm = T5LayerNorm(d)
        self.layer = nn.ModuleList([sa, ff])

    def forward(self, x, bias):
        sa, ff = self.layer
        x = x + sa.SelfAttention(sa.layer_norm(x), bias)
        h = ff.layer_norm(x)
        return x + ff.DenseReluDense.wo(F.relu(ff.DenseReluDense.wi(h)))


class T5EncoderModel(nn.Module):
    def __init__(self, vocab=32128, d=512, layers=6, heads=8, d_kv=64,
                 d_ff=2048):
        super().__init__()
        self.shared = nn.Embedding(vocab, d)
        self.encoder = nn.Module()
        self.encoder.block = nn.ModuleList(
            [T5Block(d, heads, d_kv, d_ff, i == 0) for i in range(layers)])
        self.encoder.final_layer_norm = T5LayerNorm(d)

    def forward(self, input_ids, attention_mask):
        t = input_ids.shape[1]
        ext = attention_mask[:, None, None, :].to(torch.float32)
        ext = (1.0 - ext) * torch.finfo(torch.float32).min
        first = self.encoder.block[0].layer[0].SelfAttention
        bias = first.compute_bias(t, t) + ext  # shared by all layers
        h = self.shared(input_ids)
        for blk in self.encoder.block:
            h = blk(h, bias)
        return self.encoder.final_layer_norm(h)


# --------------------------------------------------------------------------
# Whisper encoder (Hugging Face WhisperEncoder, whisper-base config)
# --------------------------------------------------------------------------

def whisper_sinusoids(length, channels, max_timescale=10000):
    inc = math.log(max_timescale) / (channels // 2 - 1)
    inv = torch.exp(-inc * torch.arange(channels // 2))
    t = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


class WhisperAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.hd = heads, d // heads
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d)
        self.q_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape

        def split(y):
            return y.view(b, t, self.heads, self.hd).transpose(1, 2)

        q = split(self.q_proj(x) * self.hd ** -0.5)
        k, v = split(self.k_proj(x)), split(self.v_proj(x))
        w = F.softmax(torch.matmul(q, k.transpose(2, 3)), dim=-1)
        ctx = torch.matmul(w, v).transpose(1, 2).reshape(b, t, d)
        return self.out_proj(ctx)


class WhisperLayer(nn.Module):
    def __init__(self, d, heads, ffn):
        super().__init__()
        self.self_attn = WhisperAttention(d, heads)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ffn)
        self.fc2 = nn.Linear(ffn, d)
        self.final_layer_norm = nn.LayerNorm(d)

    def forward(self, x):
        x = x + self.self_attn(self.self_attn_layer_norm(x))
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


class WhisperEncoder(nn.Module):
    def __init__(self, mels=80, d=512, layers=6, heads=8, ffn=2048,
                 positions=1500):
        super().__init__()
        self.conv1 = nn.Conv1d(mels, d, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d, d, kernel_size=3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(positions, d)
        with torch.no_grad():
            self.embed_positions.weight.copy_(whisper_sinusoids(positions, d))
        self.layers = nn.ModuleList(
            [WhisperLayer(d, heads, ffn) for _ in range(layers)])
        self.layer_norm = nn.LayerNorm(d)

    def forward(self, input_features):
        x = F.gelu(self.conv1(input_features))
        x = F.gelu(self.conv2(x)).permute(0, 2, 1)
        x = x + self.embed_positions.weight
        for layer in self.layers:
            x = layer(x)
        return self.layer_norm(x)


# --------------------------------------------------------------------------
# Llama decoder step with a KV cache (Hugging Face LlamaForCausalLM,
# TinyLlama-1.1B config)
# --------------------------------------------------------------------------

class LlamaRMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LlamaAttention(nn.Module):
    def __init__(self, d, heads, kv_heads):
        super().__init__()
        self.heads, self.kv, self.hd = heads, kv_heads, d // heads
        self.q_proj = nn.Linear(d, heads * self.hd, bias=False)
        self.k_proj = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.v_proj = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.o_proj = nn.Linear(heads * self.hd, d, bias=False)

    def forward(self, x, cos, sin, past_k, past_v):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = torch.cat((past_k, k), dim=2)
        v = torch.cat((past_v, v), dim=2)
        rep = self.heads // self.kv
        kl = k.shape[2]
        kr = k[:, :, None].expand(b, self.kv, rep, kl, self.hd) \
            .reshape(b, self.heads, kl, self.hd)
        vr = v[:, :, None].expand(b, self.kv, rep, kl, self.hd) \
            .reshape(b, self.heads, kl, self.hd)
        w = torch.matmul(q, kr.transpose(2, 3)) / math.sqrt(self.hd)
        w = F.softmax(w, dim=-1)  # one new token sees every cached one
        ctx = torch.matmul(w, vr).transpose(1, 2).reshape(b, t, -1)
        return self.o_proj(ctx), k, v


class LlamaMLP(nn.Module):
    def __init__(self, d, inter):
        super().__init__()
        self.gate_proj = nn.Linear(d, inter, bias=False)
        self.up_proj = nn.Linear(d, inter, bias=False)
        self.down_proj = nn.Linear(inter, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaLayer(nn.Module):
    def __init__(self, d, heads, kv_heads, inter, eps):
        super().__init__()
        self.self_attn = LlamaAttention(d, heads, kv_heads)
        self.mlp = LlamaMLP(d, inter)
        self.input_layernorm = LlamaRMSNorm(d, eps)
        self.post_attention_layernorm = LlamaRMSNorm(d, eps)

    def forward(self, x, cos, sin, pk, pv):
        a, k, v = self.self_attn(self.input_layernorm(x), cos, sin, pk, pv)
        x = x + a
        return x + self.mlp(self.post_attention_layernorm(x)), k, v


class LlamaStep(nn.Module):
    """One decode step: input_ids [N, 1] and the cache of `past` tokens per
    layer; returns logits [N, 1, vocab] and the cache grown by one."""

    def __init__(self, vocab=32000, d=2048, layers=22, heads=32, kv_heads=4,
                 inter=5632, eps=1e-5, theta=10000.0):
        super().__init__()
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(vocab, d)
        self.model.layers = nn.ModuleList(
            [LlamaLayer(d, heads, kv_heads, inter, eps)
             for _ in range(layers)])
        self.model.norm = LlamaRMSNorm(d, eps)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        hd = d // heads
        self.register_buffer(
            "inv_freq",
            1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd),
            persistent=False)
        self.n_layers, self.kv, self.hd = layers, kv_heads, hd

    def forward(self, input_ids, *past):
        t = input_ids.shape[1]
        p = past[0].shape[2]
        pos = torch.arange(t, dtype=torch.float32) + p
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        x = self.model.embed_tokens(input_ids)
        presents = []
        for i, layer in enumerate(self.model.layers):
            x, k, v = layer(x, cos, sin, past[2 * i], past[2 * i + 1])
            presents += [k, v]
        return (self.lm_head(self.model.norm(x)), *presents)


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
    "swin-t": _tv(tvm.swin_t),
}

# Vision models whose image size is the dynamic dim `size` (height = width):
# name: (constructor, default size, second size for the shapes table,
#        output names, output dims {output: {axis: dim}})
SIZED = {
    "convnext-t": (lambda: tvm.convnext_tiny(weights=None), 224, 288,
                   ["output"], {}),
    "yolov8n": (lambda: YOLOv8(), 640, 320, ["output"],
                {"output": {2: "anchors"}}),
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
    "t5-small-encoder": (lambda: T5EncoderModel(), True,
                         ["last_hidden_state"]),
}
SEQ_ALT = 384  # the second sequence length of the shapes table

LLAMA_LAYERS = 22
LLAMA_PAST, LLAMA_PAST_ALT = 512, 1024

OTHER = ["whisper-base-encoder", "tinyllama-step"]

ALL_NAMES = (list(VISION) + list(SIZED) + list(DETECTION) + list(LANGUAGE)
             + OTHER)


class Spec:
    """What export() and shapes() need to know about one model."""

    def __init__(self, model, in_names, out_names, make_args, dyn, defaults,
                 alts):
        self.model = model
        self.in_names, self.out_names = in_names, out_names
        self.make_args = make_args  # (batch, {dim: value}) -> args tuple
        self.dyn = dyn              # {tensor name: {axis: dim name}}
        self.defaults = defaults    # {dim name: default value}
        self.alts = alts            # {dim name: second value}


def build(name):
    """Return the Spec of model `name` (weights random, seed 0)."""
    torch.manual_seed(0)

    def image(size_of):
        return lambda n, d: (torch.randn(n, 3, size_of(d), size_of(d)),)

    if name in VISION:
        model, size = VISION[name]()
        return Spec(model, ["input"], ["output"], image(lambda d: size),
                    {"input": {0: "batch"}, "output": {0: "batch"}}, {}, {})
    if name in SIZED:
        ctor, size, alt, outs, odims = SIZED[name]
        dyn = {"input": {0: "batch", 2: "size", 3: "size"}}
        for o in outs:
            dyn[o] = {0: "batch", **odims.get(o, {})}
        return Spec(ctor(), ["input"], outs, image(lambda d: d["size"]), dyn,
                    {"size": size}, {"size": alt})
    if name in DETECTION:
        ctor, size, outs = DETECTION[name]
        return Spec(ctor(), ["input"], outs, image(lambda d: size),
                    {n: {0: "batch"} for n in ["input"] + outs}, {}, {})
    if name in LANGUAGE:
        ctor, has_mask, outs = LANGUAGE[name]

        def args(n, d):
            t = d["seq"]
            ids = torch.randint(0, 1000, (n, t), dtype=torch.int64)
            if not has_mask:
                return (ids,)
            mask = torch.ones(n, t, dtype=torch.int64)
            mask[n - 1, t // 2:] = 0
            return (ids, mask)

        ins = ["input_ids"] + (["attention_mask"] if has_mask else [])
        dyn = {i: {0: "batch", 1: "seq"} for i in ins}
        for o in outs:  # pooler_output is [batch, hidden]
            dyn[o] = {0: "batch"} if o == "pooler_output" else \
                {0: "batch", 1: "seq"}
        return Spec(ctor(), ins, outs, args, dyn, {"seq": SEQ_LEN},
                    {"seq": SEQ_ALT})
    if name == "whisper-base-encoder":
        return Spec(WhisperEncoder(), ["input_features"],
                    ["last_hidden_state"],
                    lambda n, d: (torch.randn(n, 80, 3000),),
                    {"input_features": {0: "batch"},
                     "last_hidden_state": {0: "batch"}}, {}, {})
    if name == "tinyllama-step":
        model = LlamaStep(layers=LLAMA_LAYERS)
        ins, outs = ["input_ids"], ["logits"]
        dyn = {"input_ids": {0: "batch"}, "logits": {0: "batch"}}
        for i in range(LLAMA_LAYERS):
            for kv in ("key", "value"):
                ins.append("past_key_values.%d.%s" % (i, kv))
                outs.append("present.%d.%s" % (i, kv))
                dyn[ins[-1]] = {0: "batch", 2: "past"}
                dyn[outs[-1]] = {0: "batch", 2: "past+1"}

        def args(n, d):
            ids = torch.randint(0, 1000, (n, 1), dtype=torch.int64)
            kv = [torch.randn(n, model.kv, d["past"], model.hd)
                  for _ in range(2 * LLAMA_LAYERS)]
            return (ids, *kv)

        return Spec(model, ins, outs, args, dyn, {"past": LLAMA_PAST},
                    {"past": LLAMA_PAST_ALT})
    raise KeyError(name)


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


def fix_outputs(path, spec, args):
    """Give graph outputs the dims we mean, and record the dim defaults.

    torch 1.13 cannot infer shapes through LayerNormalization, so outputs
    after it are declared e.g. [batch, 'LayerNormalization..._dim_1', 768].
    Every output dim named in spec.dyn gets that name; every other dim_param
    is replaced with the size torch actually produces. Each dynamic dim with
    a default is recorded as metadata "usher.dim.<name>" = "<value>", which
    usher binds when the user sets nothing (the figures stay those of the
    default). External data, if any, is left where it is.
    """
    m = onnx.load(path, load_external_data=False)
    with torch.no_grad():
        outs = spec.model(*args)
    if not isinstance(outs, (tuple, list)):
        outs = (outs,)
    shapes = dict(zip(spec.out_names, (tuple(o.shape) for o in outs)))
    for o in m.graph.output:
        named = spec.dyn.get(o.name, {})
        for i, d in enumerate(o.type.tensor_type.shape.dim):
            if i in named:
                d.dim_param = named[i]
            elif d.HasField("dim_param"):
                d.dim_value = shapes[o.name][i]  # clears dim_param (oneof)
    del m.metadata_props[:]
    for k, v in sorted(spec.defaults.items()):
        e = m.metadata_props.add()
        e.key, e.value = "usher.dim." + k, str(v)
    onnx.save(m, path)


def initializer_elements(path):
    m = onnx.load(path, load_external_data=False)
    total = 0
    for init in m.graph.initializer:
        n = 1
        for d in init.dims:
            n *= d
        total += n
    return total


def export(name, outdir):
    spec = build(name)
    model = spec.model
    model.eval()
    break_ties(model)
    params = sum(p.numel() for p in model.parameters())
    path = os.path.join(outdir, name + ".onnx")
    args = spec.make_args(EXPORT_BATCH, spec.defaults)
    t0 = time.time()
    # Deliberately NOT under torch.no_grad(): with grad disabled,
    # nn.MultiheadAttention (vit-b16) takes its inference fast path
    # (aten::_native_multi_head_attention), which has no ONNX export.
    # Models over 2 GB (tinyllama-step) are written with external data
    # (one file per weight beside the model), which torch decides itself.
    torch.onnx.export(model, args, path, opset_version=OPSET,
                      input_names=spec.in_names, output_names=spec.out_names,
                      dynamic_axes=spec.dyn, do_constant_folding=True)
    fix_outputs(path, spec, args)
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


def shape_rows(name, device):
    """Output shapes torch produces at batch 1 and 2 and at the default and
    the second value of each dynamic dim: rows of the shapes table.

    device "meta": the module runs on torch's meta device, so torch's own
    shape functions give every output's shape without arithmetic (seconds
    instead of minutes for bert-large and whisper on 2 shared cores); a model
    that meta cannot run falls back to "cpu", the real forward pass. The
    last column of each row says which ran."""
    spec = build(name)
    spec.model.eval()
    if device == "meta":
        try:
            spec.model.to("meta")
            with torch.no_grad():
                spec.model(*[a.to("meta") for a in
                             spec.make_args(1, spec.defaults)])
        except Exception as e:  # an op without a meta kernel
            print("  %s: meta device failed (%s), running on cpu"
                  % (name, str(e).splitlines()[0][:100]), flush=True)
            spec = build(name)
            spec.model.eval()
            device = "cpu"
    dims = sorted(spec.defaults)
    settings = [dict(spec.defaults)]
    for dname in dims:
        settings.append({**spec.defaults, dname: spec.alts[dname]})
    rows = []
    for d in settings:
        for n in (1, 2):
            with torch.no_grad():
                outs = spec.model(*[a.to(device)
                                    for a in spec.make_args(n, d)])
            if not isinstance(outs, (tuple, list)):
                outs = (outs,)
            bind = ",".join(["batch=%d" % n]
                            + ["%s=%d" % (k, d[k]) for k in dims])
            for oname, o in zip(spec.out_names, outs):
                rows.append("%s\t%s\t%s\t[%s]\t%s" % (
                    name, bind, oname, ",".join(str(x) for x in o.shape),
                    device))
    return rows


def write_shapes(path, names, device):
    """Replace the rows of `names` in the table at `path` (others kept)."""
    keep = []
    if os.path.exists(path):
        with open(path) as f:
            keep = [ln.rstrip("\n") for ln in f
                    if ln.strip() and not ln.startswith("#")
                    and ln.split("\t")[0] not in names]
    rows = list(keep)
    for n in names:
        t0 = time.time()
        rows += shape_rows(n, device)
        print("%-20s shapes (%.0fs)" % (n, time.time() - t0), flush=True)
    order = {n: i for i, n in enumerate(ALL_NAMES)}
    rows.sort(key=lambda r: order.get(r.split("\t")[0], len(order)))
    with open(path, "w") as f:
        f.write("# model\tbindings\toutput\tshape torch produced\t"
                "device it ran on (tools/zoo/export_zoo.py --shapes; "
                "tests/test_zoo.c)\n")
        for r in rows:
            f.write(r + "\n")


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print("usage: export_zoo.py OUTDIR [NAME ...]\n"
              "       export_zoo.py --shapes [--cpu] TABLE [NAME ...]\n"
              "names: "
              + " ".join(ALL_NAMES), file=sys.stderr)
        return 2
    shapes = argv[1] == "--shapes"
    device = "meta"
    if shapes:
        argv = argv[1:]
        if len(argv) > 1 and argv[1] == "--cpu":
            device = "cpu"
            argv = argv[1:]
        if len(argv) < 2:
            print("usage: export_zoo.py --shapes [--cpu] TABLE [NAME ...]",
                  file=sys.stderr)
            return 2
    outdir = argv[1]
    names = argv[2:] or ALL_NAMES
    bad = [n for n in names if n not in ALL_NAMES]
    if bad:
        print("unknown model(s): %s\nknown: %s"
              % (" ".join(bad), " ".join(ALL_NAMES)), file=sys.stderr)
        return 2
    if shapes:
        write_shapes(outdir, names, device)
        return 0
    os.makedirs(outdir, exist_ok=True)
    ok = True
    for n in names:
        ok = export(n, outdir) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
