"""Install mmext, the MMDetection 3.x extension for semi-supervised defect detection."""
from setuptools import find_packages, setup


def read_requirements(path: str) -> list:
    """Return the requirement lines of ``path`` without comments."""
    with open(path, encoding='utf-8') as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


setup(
    name='mmext',
    version='0.1.0',
    description='MMDetection 3.x extension for semi-supervised defect '
    'detection: anchors, losses, hooks and diagnosis tools',
    packages=find_packages(include=['mmext', 'mmext.*']),
    python_requires='>=3.9',
    install_requires=[
        'torch>=2.0',
        'mmcv>=2.1,<2.2',
        'mmdet>=3.3,<3.4',
    ] + read_requirements('requirements/runtime.txt'),
    extras_require={'tests': read_requirements('requirements/tests.txt')},
    include_package_data=True,
    package_data={'mmext.experiments': ['measured_effects.json']},
    zip_safe=False,
)
