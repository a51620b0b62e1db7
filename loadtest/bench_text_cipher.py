"""Cost of encryption at rest on the hot path: seal (accept) + unseal (dispatch) per text.

``python -m loadtest.bench_text_cipher`` prints µs per message for a one-part Cyrillic
text and a 3-part one, plain (no key) and with AES-256-GCM.
"""

from __future__ import annotations

import os
import timeit

from gateway.adapters.text_cipher import TextCipher

TEXTS = (
    "Ваш код подтверждения 4821. Никому его не сообщайте! Служба поддержки.",  # one part
    "Здравствуйте! Ваш заказ собран и передан в доставку. " * 3,  # three parts
)
ROUNDS = 20_000


def per_message_us(cipher: TextCipher, text: str) -> float:
    def one() -> None:
        cipher.unseal(cipher.seal(text))

    return min(timeit.repeat(one, number=ROUNDS, repeat=5)) / ROUNDS * 1e6


def main() -> None:
    for text in TEXTS:
        plain = per_message_us(TextCipher(), text)
        sealed = per_message_us(TextCipher(os.urandom(32)), text)
        print(f"{len(text)} chars: plain {plain:.2f} µs, AES-256-GCM {sealed:.2f} µs per message")


if __name__ == "__main__":
    main()
